"""The venue's order vocabulary: what a client may send and what the venue reports.

These are the messages of the venue protocol (like an exchange's API): execution sends
an :class:`OrderRequest`; the venue answers with accepted / rejected / filled / canceled
reports, which travel back over the bus so the chaos layer can interfere with them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import ClassVar

import msgspec

from predator.core.events import Event

__all__ = [
    "Liquidity",
    "OrderRequest",
    "OrderType",
    "RejectReason",
    "Side",
    "TimeInForce",
    "VenueAmendRejected",
    "VenueOrderAccepted",
    "VenueOrderAmended",
    "VenueOrderCanceled",
    "VenueOrderFilled",
    "VenueOrderRejected",
    "VenueReport",
]


class Side(IntEnum):
    """Order side; the value is the sign it gives a quantity."""

    BUY = 1
    SELL = -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    """Good till canceled."""
    IOC = "ioc"
    """Immediate or cancel: in bar mode, only the first bar it can meet counts."""
    FOK = "fok"
    """Fill or kill: fills in full at once or is rejected (L2 mode)."""
    GTD = "gtd"
    """Good till date: expires at ``OrderRequest.expire_at`` (L2 mode)."""


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class RejectReason(StrEnum):
    INSUFFICIENT_MARGIN = "insufficient_margin"
    INVALID_SIZE = "invalid_size"
    INVALID_PRICE = "invalid_price"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    UNKNOWN_ACCOUNT = "unknown_account"
    NO_POSITION = "no_position"
    NO_MARKET_DATA = "no_market_data"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    VENUE_HALTED = "venue_halted"
    BELOW_MIN_QUANTITY = "below_min_quantity"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    OFF_TICK_SIZE = "off_tick_size"
    OUTSIDE_PRICE_BAND = "outside_price_band"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    REDUCE_ONLY_WOULD_INCREASE = "reduce_only_would_increase"
    FOK_CANNOT_FILL = "fok_cannot_fill"
    INVALID_EXPIRY = "invalid_expiry"
    UNKNOWN_ORDER = "unknown_order"


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An order as sent to the venue.

    Exactly one sizing applies: ``quantity`` (units at the instrument's size precision),
    ``equity_fraction`` (decimal string: that share of the account's available margin,
    resolved at fill time like a quote-amount order), or ``close_position`` (whatever the
    position is at fill time; implies reduce-only).
    """

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType = OrderType.MARKET
    quantity: int = 0
    equity_fraction: str | None = None
    close_position: bool = False
    limit_price: int | None = None
    stop_price: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    account: str = "main"
    """The venue sub-account (capital pool) the order trades for."""
    post_only: bool = False
    """Limit orders only: rejected instead of taking liquidity (L2 mode)."""
    expire_at: int | None = None
    """Kernel nanoseconds at which a ``GTD`` order expires (L2 mode)."""


class VenueReport(Event, frozen=True, kw_only=True):
    """Base of everything the venue reports about an order."""

    journaled: ClassVar[bool] = False
    client_order_id: str


class VenueOrderAccepted(VenueReport, frozen=True, kw_only=True):
    venue_order_id: str


class VenueOrderRejected(VenueReport, frozen=True, kw_only=True):
    reason: RejectReason
    detail: str = ""


class VenueOrderCanceled(VenueReport, frozen=True, kw_only=True):
    venue_order_id: str
    reason: str
    detail: str = ""


class VenueOrderAmended(VenueReport, frozen=True, kw_only=True):
    """An amend took effect: ``quantity`` is the new total, ``leaves_quantity`` what rests.

    ``kept_priority`` says whether the order kept its place in the queue (only a size
    decrease at the same price keeps it).
    """

    venue_order_id: str
    quantity: int
    limit_price: int | None
    leaves_quantity: int
    kept_priority: bool


class VenueAmendRejected(VenueReport, frozen=True, kw_only=True):
    """An amend was refused; the order stands unchanged (when it still exists)."""

    reason: RejectReason
    detail: str = ""


class VenueOrderFilled(VenueReport, frozen=True, kw_only=True):
    """One fill. ``trade_id`` is unique per venue; ``leaves_quantity`` 0 means done."""

    venue_order_id: str
    trade_id: str
    account: str = "main"
    symbol: str
    side: Side
    price: int
    quantity: int
    fee: int
    liquidity: Liquidity
    order_quantity: int
    leaves_quantity: int
