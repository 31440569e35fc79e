"""Orders inside the L2 paper exchange: their state, the venue's rules, the rate limiter.

:class:`L2Order` is the venue's record of one order (quantity, fills, cancels, queue
place); :class:`OrderState` is the copy a client may read. :class:`L2Rules` holds the
exchange filters real venues apply at entry (minimum quantity and notional, price band
around the mid, request rate), and :func:`check_request` the checks that need no market
state. The exchange itself (:mod:`predator.venue.l2_exchange`) applies the rest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import msgspec

from predator.market.instrument import Instrument
from predator.venue.orders import OrderRequest, OrderType, RejectReason, Side, TimeInForce
from predator.venue.queue_model import QueuePosition

__all__ = [
    "ClientRequest",
    "L2Order",
    "L2Rules",
    "OrderState",
    "OrderStatus",
    "RateLimiter",
    "check_request",
    "reference_price",
]


class OrderStatus(StrEnum):
    """Where an order is in the L2 venue."""

    WAITING_TRIGGER = "waiting_trigger"
    """A stop or stop-limit whose stop price has not traded yet."""
    RESTING = "resting"
    """A limit order in the book (or a triggered stop-limit)."""
    FILLED = "filled"
    CANCELED = "canceled"
    """Canceled by the client, expired, or cancelled by the venue (the report says why)."""


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue knows of one order: ``filled + leaves + canceled == quantity``."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    status: OrderStatus
    quantity: int
    filled: int
    leaves: int
    canceled: int
    limit_price: int | None
    queue_ahead: int | None
    """Displayed size estimated ahead of the order at its price (resting orders only)."""


class L2Order:
    """The venue's mutable record of an accepted order (never leaves the venue)."""

    __slots__ = (
        "arrival_ts",
        "canceled",
        "filled",
        "first_fill_done",
        "priority",
        "quantity",
        "queue",
        "request",
        "status",
        "venue_order_id",
    )

    def __init__(
        self, request: OrderRequest, venue_order_id: str, quantity: int, arrival_ts: int
    ) -> None:
        self.request = request
        self.venue_order_id = venue_order_id
        self.quantity = quantity
        self.filled = 0
        self.canceled = 0
        self.arrival_ts = arrival_ts
        self.status = OrderStatus.RESTING
        self.queue: QueuePosition | None = None
        self.priority = 0
        self.first_fill_done = False

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def price(self) -> int | None:
        """The limit price (``None`` for market and stop orders)."""
        return self.request.limit_price

    @property
    def leaves(self) -> int:
        return self.quantity - self.filled - self.canceled

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.RESTING, OrderStatus.WAITING_TRIGGER)

    @property
    def reduces_only(self) -> bool:
        return self.request.reduce_only or self.request.close_position

    def state(self) -> OrderState:
        return OrderState(
            client_order_id=self.client_order_id,
            venue_order_id=self.venue_order_id,
            symbol=self.symbol,
            side=self.side,
            status=self.status,
            quantity=self.quantity,
            filled=self.filled,
            leaves=self.leaves,
            canceled=self.canceled,
            limit_price=self.price,
            queue_ahead=None if self.queue is None else self.queue.ahead,
        )

    def __repr__(self) -> str:
        return (
            f"L2Order({self.client_order_id!r}, {self.side.name} {self.quantity}"
            f" @ {self.price}, filled={self.filled}, {self.status.value})"
        )


class ClientRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A client message on its way to the matching engine (submit, cancel, amend or
    heartbeat); only the fields of its ``kind`` are set."""

    kind: str
    order: OrderRequest | None = None
    client_order_id: str = ""
    reason: str = ""
    quantity: int | None = None
    limit_price: int | None = None
    account: str = "main"
    timeout_ns: int | None = None


def reference_price(request: OrderRequest) -> int:
    """The price an order is expected to trade at: its limit, else its stop (market
    orders have none: callers use the book)."""
    price = request.limit_price if request.limit_price is not None else request.stop_price
    if price is None:
        raise ValueError(f"{request.client_order_id}: a {request.order_type} order has no price")
    return price


class L2Rules(msgspec.Struct, frozen=True, kw_only=True):
    """Entry filters of one instrument, as real venues publish them (Binance filters).

    Every default switches its filter off.
    """

    min_quantity: int = 0
    """Smallest order quantity, in size units (``LOT_SIZE.minQty``)."""
    min_notional: int = 0
    """Smallest ``price * quantity`` in money units (``NOTIONAL.minNotional``), at the
    limit price, or at the mid for market and stop orders."""
    price_band_bps: int | None = None
    """Limit and stop prices must lie within this many bps of the mid (``PERCENT_PRICE``)."""
    max_requests: int | None = None
    """Submits and amends allowed per account within ``rate_window_ns`` (cancels are free,
    so a client can always take risk off)."""
    rate_window_ns: int = 1_000_000_000
    """The sliding window of ``max_requests`` (default one second)."""


class RateLimiter:
    """A sliding-window request counter per account (times in kernel ns)."""

    __slots__ = ("_sent",)

    def __init__(self) -> None:
        self._sent: dict[str, deque[int]] = {}

    def allow(self, account: str, now: int, limit: int | None, window_ns: int) -> bool:
        """Count a request of ``account`` at ``now``; False (and not counted) when the
        window already holds ``limit`` requests."""
        if limit is None:
            return True
        sent = self._sent.setdefault(account, deque())
        while sent and sent[0] <= now - window_ns:
            sent.popleft()
        if len(sent) >= limit:
            return False
        sent.append(now)
        return True


def check_request(
    request: OrderRequest,
    instruments: Mapping[str, Instrument],
    accounts: Mapping[str, object],
    rules: L2Rules,
    now: int,
) -> tuple[RejectReason | None, str]:
    """The checks of ``request`` that need no market data: instrument, account, sizing,
    prices on the tick, time in force, post-only. ``(None, "")`` when it passes."""
    instrument = instruments.get(request.symbol)
    if instrument is None:
        return RejectReason.UNKNOWN_INSTRUMENT, request.symbol
    if request.account not in accounts:
        return RejectReason.UNKNOWN_ACCOUNT, request.account
    sized = (request.quantity != 0) + (request.equity_fraction is not None)
    sized += bool(request.close_position)
    if sized != 1:
        return RejectReason.INVALID_SIZE, "exactly one of quantity, fraction, close"
    if request.quantity < 0 or request.quantity % instrument.size_increment:
        return RejectReason.INVALID_SIZE, f"quantity {request.quantity}"
    if request.quantity and request.quantity < rules.min_quantity:
        return RejectReason.BELOW_MIN_QUANTITY, f"{request.quantity} < {rules.min_quantity}"
    if request.equity_fraction is not None:
        try:
            fraction = Decimal(request.equity_fraction)
        except (ArithmeticError, InvalidOperation):
            return RejectReason.INVALID_SIZE, f"fraction {request.equity_fraction!r}"
        if not fraction.is_finite() or not 0 < fraction <= 1:
            return RejectReason.INVALID_SIZE, f"fraction {fraction} outside (0, 1]"
        if request.reduce_only:
            return RejectReason.INVALID_SIZE, "reduce-only orders are sized in units or close"
    kind = request.order_type
    needs_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
    for needed, price, name in (
        (needs_limit, request.limit_price, "limit"),
        (needs_stop, request.stop_price, "stop"),
    ):
        if not needed:
            continue
        if price is None or price <= 0:
            return RejectReason.INVALID_PRICE, f"{name} price {price}"
        if price % instrument.price_increment:
            return (
                RejectReason.OFF_TICK_SIZE,
                f"{name} price {price} is not a multiple of {instrument.price_increment}",
            )
    if request.tif is TimeInForce.GTD and (request.expire_at is None or request.expire_at <= now):
        return RejectReason.INVALID_EXPIRY, f"GTD expire_at {request.expire_at} <= now {now}"
    if request.post_only and (kind is not OrderType.LIMIT and kind is not OrderType.STOP_LIMIT):
        return RejectReason.POST_ONLY_WOULD_CROSS, f"a post-only {kind.value} order always takes"
    if request.post_only and request.tif in (TimeInForce.IOC, TimeInForce.FOK):
        return RejectReason.POST_ONLY_WOULD_CROSS, f"post-only {request.tif.value} can only take"
    return None, ""
