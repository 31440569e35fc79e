"""The order state machine and the execution events it emits.

An order moves initialized -> submitted -> accepted -> (partially filled) -> filled,
or ends canceled / rejected / expired. An order sent without an answer is UNKNOWN:
never assumed canceled; only the venue's answer resolves it.
"""

from __future__ import annotations

from enum import StrEnum

from predator.core.events import Event
from predator.venue.orders import Liquidity, OrderRequest, Side

__all__ = [
    "FillReversed",
    "InvalidTransition",
    "Order",
    "OrderAccepted",
    "OrderCanceled",
    "OrderEvent",
    "OrderFilled",
    "OrderRejected",
    "OrderStatus",
    "OrderSubmitted",
    "status_after_reversal",
    "undo_fill",
]


class OrderStatus(StrEnum):
    INITIALIZED = "initialized"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.INITIALIZED: frozenset({_S.SUBMITTED, _S.REJECTED}),
    # A venue report can overtake the acceptance (delayed or lost on the bus).
    _S.SUBMITTED: frozenset(
        {
            _S.ACCEPTED,
            _S.REJECTED,
            _S.UNKNOWN,
            _S.FILLED,
            _S.PARTIALLY_FILLED,
            _S.CANCELED,
            _S.EXPIRED,
        }
    ),
    _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.UNKNOWN}),
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.UNKNOWN}
    ),
    _S.UNKNOWN: frozenset(
        {_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED}
    ),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}
TERMINAL = frozenset(status for status, nexts in TRANSITIONS.items() if not nexts)


class InvalidTransition(RuntimeError):
    """An order was asked to move to a state its state machine does not allow."""

    def __init__(self, client_order_id: str, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"order {client_order_id}: {current.value} -> {target.value} not allowed")
        self.client_order_id = client_order_id
        self.current = current
        self.target = target


class Order:
    """Our view of one order, keyed by its client order id (idempotent submission)."""

    __slots__ = (
        "fees",
        "filled_quantity",
        "request",
        "status",
        "strategy",
        "trade_ids",
        "venue_order_id",
    )

    def __init__(self, request: OrderRequest, strategy: str) -> None:
        self.request = request
        self.strategy = strategy
        self.status = OrderStatus.INITIALIZED
        self.venue_order_id: str | None = None
        self.filled_quantity = 0
        self.fees = 0
        self.trade_ids: set[str] = set()

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def is_open(self) -> bool:
        """Not yet in a terminal state (its exposure still counts)."""
        return self.status not in TERMINAL

    def transition(self, target: OrderStatus) -> None:
        """Move to ``target`` or raise :class:`InvalidTransition`."""
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.client_order_id, self.status, target)
        self.status = target


class OrderEvent(Event, frozen=True, kw_only=True):
    """Base of execution's journaled order events."""

    client_order_id: str
    strategy: str


class OrderSubmitted(OrderEvent, frozen=True, kw_only=True):
    request: OrderRequest


class OrderAccepted(OrderEvent, frozen=True, kw_only=True):
    venue_order_id: str


class OrderRejected(OrderEvent, frozen=True, kw_only=True):
    reason: str
    detail: str = ""


class OrderCanceled(OrderEvent, frozen=True, kw_only=True):
    reason: str
    detail: str = ""


class OrderFilled(OrderEvent, frozen=True, kw_only=True):
    """A fill applied to our order (each venue ``trade_id`` is applied exactly once)."""

    trade_id: str
    account: str = "main"
    symbol: str
    side: Side
    price: int
    quantity: int
    fee: int
    liquidity: Liquidity
    leaves_quantity: int


class FillReversed(OrderEvent, frozen=True, kw_only=True):
    """A journaled correction: the fill ``trade_id`` we applied is undone exactly.

    Reconciliation proved it false (the venue, the authority on its trades, never made
    it): the order, the pool, the ledger and the run's counts are as if it never came.
    Carries the reversed fill's fields.
    """

    trade_id: str
    account: str = "main"
    symbol: str
    side: Side
    price: int
    quantity: int
    fee: int
    liquidity: Liquidity
    leaves_quantity: int
    fill_ts: int
    """When the reversed fill said it happened (``ts`` is when it was reversed)."""
    reason: str


def undo_fill(order: Order, reversed_: FillReversed) -> None:
    """Take the reversed fill out of ``order``: trade id, quantity, fees and status."""
    order.trade_ids.discard(reversed_.trade_id)
    order.filled_quantity -= reversed_.quantity
    order.fees -= reversed_.fee
    order.status = status_after_reversal(order.status, reversed_, bool(order.trade_ids))


def status_after_reversal(
    status: OrderStatus, reversed_: FillReversed, other_fills: bool
) -> OrderStatus:
    """An order's status once the fill ``reversed_`` is taken out of it.

    Only a fill that left the order open (or that completed it itself) changes it: an
    order a real fill completed later, or the venue closed, stays as it is. Otherwise
    it is open again, as the venue still holds it.
    """
    if status is OrderStatus.FILLED and reversed_.leaves_quantity > 0:
        return status  # a later real fill completed it
    if status not in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
        return status  # closed since by the venue's own answer (a cancel, an expiry)
    return OrderStatus.PARTIALLY_FILLED if other_fills else OrderStatus.ACCEPTED
