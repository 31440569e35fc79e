"""The OHLCV bar event that bar-mode runs are driven by."""

from __future__ import annotations

from typing import ClassVar

from predator.core.events import Event

__all__ = ["Bar"]


class Bar(Event, frozen=True, kw_only=True):
    """One OHLCV bar of ``symbol``; ``ts`` is the bar's open time (ns since epoch, UTC).

    Prices are ints at the instrument's price precision, volume at ``volume_precision``.
    """

    journaled: ClassVar[bool] = False
    symbol: str
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
