"""Market-data health facts: a feed that cannot be trusted is announced on the bus.

The risk layer listens and refuses new exposure on an instrument whose data is
invalid (a sequence gap, a broken book) until the feed says it is valid again.
"""

from __future__ import annotations

from predator.core.events import Event

__all__ = ["MarketDataInvalidated", "MarketDataRejected", "MarketDataRestored"]


class MarketDataInvalidated(Event, frozen=True, kw_only=True):
    """``symbol``'s data can no longer be trusted (gap, resync needed); ``reason`` says why."""

    symbol: str
    reason: str


class MarketDataRestored(Event, frozen=True, kw_only=True):
    """``symbol``'s data is valid again (resynchronised)."""

    symbol: str


class MarketDataRejected(Event, frozen=True, kw_only=True):
    """A market-data message that cannot be true was stopped before anyone used it (a bar
    whose prices are not positive or not ordered, or older than one already seen)."""

    symbol: str
    data_ts: int
    reason: str
