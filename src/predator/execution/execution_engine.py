"""ExecutionEngine: turns risk-approved requests into orders and venue reports into facts.

It owns the order state machine. Submission is idempotent by client order id, and a
venue fill is applied exactly once per venue trade id, whatever the bus delivers.
"""

from __future__ import annotations

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.core.events import Command, Event
from predator.execution.heartbeat import (
    CroHeartbeat,
    ExecutionHalted,
    ExecutionResumed,
    ResumeRefused,
)
from predator.execution.order import (
    FillReversed,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
    undo_fill,
)
from predator.execution.venue_client import VenueClient
from predator.venue.orders import (
    OrderRequest,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
    VenueReport,
)

__all__ = ["ExecuteOrder", "ExecutionEngine", "VenueReportRefused"]


class ExecuteOrder(Command, frozen=True, kw_only=True):
    """Send ``request`` to the venue. Only the risk engine sends this command."""

    strategy: str
    request: OrderRequest


class VenueReportRefused(Event, frozen=True, kw_only=True):
    """A venue report execution refused to apply because it cannot be true (a corrupt
    fill: no quantity, no price, another side or symbol than the order's)."""

    client_order_id: str
    strategy: str
    trade_id: str
    problem: str


def _fill_problem(order: Order, fill: VenueOrderFilled) -> str | None:
    """Why ``fill`` cannot be a fill of ``order``, or ``None`` when it can."""
    request = order.request
    if fill.quantity <= 0:
        return f"fill quantity {fill.quantity} is not positive"
    if fill.price <= 0:
        return f"fill price {fill.price} is not positive"
    if fill.leaves_quantity < 0:
        return f"leaves quantity {fill.leaves_quantity} is negative"
    if fill.side != request.side:
        return f"fill side {fill.side.name} is not the order's {request.side.name}"
    if fill.symbol != request.symbol or fill.account != request.account:
        ours = f"{request.account}/{request.symbol}"
        return f"fill of {fill.account}/{fill.symbol} for an order of {ours}"
    if request.quantity and order.filled_quantity + fill.quantity > request.quantity:
        return (
            f"fills would reach {order.filled_quantity + fill.quantity}, "
            f"more than the ordered {request.quantity}"
        )
    return None


class ExecutionEngine:
    """Keeps every order we ever sent and applies the venue's reports to them."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        clock: Clock,
        client: VenueClient,
        heartbeat_timeout_ns: int | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._client = client
        self.orders: dict[str, Order] = {}
        self._open: dict[str, Order] = {}  # a superset of the open orders (pruned lazily)
        self.duplicate_fills = 0
        self.unmatched_reports = 0
        self.invalid_reports = 0
        self.heartbeat_timeout_ns = heartbeat_timeout_ns
        self.last_heartbeat_ts: int | None = None
        self.halted: str | None = None
        bus.register(ExecuteOrder, self._on_execute)
        bus.subscribe(VenueReport, self._on_report)
        bus.subscribe(CroHeartbeat, self._on_heartbeat)
        bus.subscribe(FillReversed, self._on_reversed)

    def _on_reversed(self, event: FillReversed) -> None:
        """A fill proved false: the order is as before it, open again if the venue
        still holds it."""
        order = self.orders.get(event.client_order_id)
        if order is None or event.trade_id not in order.trade_ids:
            return
        undo_fill(order, event)
        if order.is_open:
            self._open[order.client_order_id] = order

    # -- CRO heartbeat: fail closed -------------------------------------------------------
    def _on_heartbeat(self, heartbeat: CroHeartbeat) -> None:
        self.last_heartbeat_ts = heartbeat.ts

    def cro_alive(self) -> bool:
        """Whether the last CRO heartbeat is within the timeout (always, without one)."""
        timeout = self.heartbeat_timeout_ns
        if timeout is None:
            return True
        last = self.last_heartbeat_ts
        return last is not None and self._clock.now_ns() - last <= timeout

    def check_heartbeat(self) -> bool:
        """Halt (once, journaled) when the CRO's last heartbeat is older than the timeout;
        called before every order and by the kernel's watchdog. True while halted."""
        if self.halted is None and not self.cro_alive():
            self.halted = "CRO heartbeat lost"
            self._bus.publish(
                ExecutionHalted(
                    ts=self._clock.now_ns(),
                    reason=self.halted,
                    last_heartbeat_ts=self.last_heartbeat_ts,
                )
            )
        return self.halted is not None

    def resume(self, *, actor: str, reason: str) -> None:
        """Operator approval to send orders again; refused while the CRO is silent."""
        if self.halted is None:
            return
        if not self.cro_alive():
            raise ResumeRefused(f"cannot resume: no CRO heartbeat ({self.halted})")
        self.halted = None
        self._bus.publish(ExecutionResumed(ts=self._clock.now_ns(), actor=actor, reason=reason))

    def _refuse(self, command: ExecuteOrder, reason: str) -> Order:
        request = command.request
        order = Order(request, command.strategy)
        self.orders[request.client_order_id] = order
        order.transition(OrderStatus.REJECTED)
        self._bus.publish(
            OrderRejected(
                ts=self._clock.now_ns(),
                client_order_id=request.client_order_id,
                strategy=command.strategy,
                reason="execution_halted",
                detail=reason,
            )
        )
        return order

    def restore(self, order: Order) -> None:
        """Take back an order rebuilt from the journal or the venue after a restart."""
        self.orders[order.client_order_id] = order
        if order.is_open:
            self._open[order.client_order_id] = order

    def open_orders(self) -> list[Order]:
        """Orders not yet in a terminal state, in submission order."""
        open_ = self._open
        for client_order_id in [k for k, order in open_.items() if not order.is_open]:
            del open_[client_order_id]  # settled since: drop lazily, keep the order
        return list(open_.values())

    def _on_execute(self, command: ExecuteOrder) -> Order:
        request = command.request
        existing = self.orders.get(request.client_order_id)
        if existing is not None:
            return existing  # idempotent: the same client order id is never sent twice
        self.check_heartbeat()
        if self.halted is not None:
            return self._refuse(command, self.halted)
        order = Order(request, command.strategy)
        self.orders[request.client_order_id] = order
        self._open[request.client_order_id] = order
        order.transition(OrderStatus.SUBMITTED)
        self._bus.publish(
            OrderSubmitted(
                ts=self._clock.now_ns(),
                client_order_id=request.client_order_id,
                strategy=command.strategy,
                request=request,
            )
        )
        self._client.submit(request)
        return order

    def _on_report(self, report: VenueReport) -> None:
        order = self.orders.get(report.client_order_id)
        if order is None:
            self.unmatched_reports += 1
            return
        ts = self._clock.now_ns()
        if isinstance(report, VenueOrderFilled):
            if report.trade_id in order.trade_ids:
                self.duplicate_fills += 1
                return
            problem = _fill_problem(order, report)
            if problem is not None:
                # Never apply a report that cannot be true: the venue's real fill, if
                # there is one, comes back through reconciliation.
                self.invalid_reports += 1
                self._bus.publish(
                    VenueReportRefused(
                        ts=ts,
                        client_order_id=order.client_order_id,
                        strategy=order.strategy,
                        trade_id=report.trade_id,
                        problem=problem,
                    )
                )
                return
            order.trade_ids.add(report.trade_id)
            order.filled_quantity += report.quantity
            order.fees += report.fee
            order.transition(
                OrderStatus.FILLED if report.leaves_quantity == 0 else OrderStatus.PARTIALLY_FILLED
            )
            self._bus.publish(
                OrderFilled(
                    # The trade happened when the venue says, also when its report
                    # reaches us late (re-delivered after a loss or a restart).
                    ts=report.ts,
                    client_order_id=order.client_order_id,
                    strategy=order.strategy,
                    trade_id=report.trade_id,
                    account=report.account,
                    symbol=report.symbol,
                    side=report.side,
                    price=report.price,
                    quantity=report.quantity,
                    fee=report.fee,
                    liquidity=report.liquidity,
                    leaves_quantity=report.leaves_quantity,
                )
            )
        elif isinstance(report, VenueOrderAccepted):
            if order.status in (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN):
                order.venue_order_id = report.venue_order_id
                order.transition(OrderStatus.ACCEPTED)
                self._bus.publish(
                    OrderAccepted(
                        ts=ts,
                        client_order_id=order.client_order_id,
                        strategy=order.strategy,
                        venue_order_id=report.venue_order_id,
                    )
                )
        elif isinstance(report, VenueOrderRejected):
            if order.is_open:
                order.transition(OrderStatus.REJECTED)
                self._bus.publish(
                    OrderRejected(
                        ts=ts,
                        client_order_id=order.client_order_id,
                        strategy=order.strategy,
                        reason=report.reason.value,
                        detail=report.detail,
                    )
                )
        elif isinstance(report, VenueOrderCanceled) and order.is_open:
            expired = report.reason == "expired"
            order.transition(OrderStatus.EXPIRED if expired else OrderStatus.CANCELED)
            self._bus.publish(
                OrderCanceled(
                    ts=ts,
                    client_order_id=order.client_order_id,
                    strategy=order.strategy,
                    reason=report.reason,
                    detail=report.detail,
                )
            )
