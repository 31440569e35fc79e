"""ExecutionEngine: turns risk-approved requests into orders and venue reports into facts.

It owns the order state machine. Submission is idempotent by client order id, and a
venue fill is applied exactly once per venue trade id, whatever the bus delivers.
"""

from __future__ import annotations

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.core.events import Command
from predator.execution.order import (
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
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

__all__ = ["ExecuteOrder", "ExecutionEngine"]


class ExecuteOrder(Command, frozen=True, kw_only=True):
    """Send ``request`` to the venue. Only the risk engine sends this command."""

    strategy: str
    request: OrderRequest


class ExecutionEngine:
    """Keeps every order we ever sent and applies the venue's reports to them."""

    def __init__(self, *, bus: MessageBus, clock: Clock, client: VenueClient) -> None:
        self._bus = bus
        self._clock = clock
        self._client = client
        self.orders: dict[str, Order] = {}
        self.duplicate_fills = 0
        self.unmatched_reports = 0
        bus.register(ExecuteOrder, self._on_execute)
        bus.subscribe(VenueReport, self._on_report)

    def open_orders(self) -> list[Order]:
        """Orders not yet in a terminal state, in submission order."""
        return [order for order in self.orders.values() if order.is_open]

    def _on_execute(self, command: ExecuteOrder) -> Order:
        request = command.request
        existing = self.orders.get(request.client_order_id)
        if existing is not None:
            return existing  # idempotent: the same client order id is never sent twice
        order = Order(request, command.strategy)
        self.orders[request.client_order_id] = order
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
            order.trade_ids.add(report.trade_id)
            order.filled_quantity += report.quantity
            order.fees += report.fee
            order.transition(
                OrderStatus.FILLED if report.leaves_quantity == 0 else OrderStatus.PARTIALLY_FILLED
            )
            self._bus.publish(
                OrderFilled(
                    ts=ts,
                    client_order_id=order.client_order_id,
                    strategy=order.strategy,
                    trade_id=report.trade_id,
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
