"""Market data: instruments, the Bar event and loaders for real OHLCV files.

Builds on ``predator.core`` only; venues, strategies and runs consume what it produces.
"""

from predator.market.bar import Bar
from predator.market.bar_loader import BarFeed, load_bars
from predator.market.errors import DataFormatError
from predator.market.instrument import Instrument
from predator.market.status import MarketDataInvalidated, MarketDataRestored

__all__ = [
    "Bar",
    "BarFeed",
    "DataFormatError",
    "Instrument",
    "MarketDataInvalidated",
    "MarketDataRestored",
    "load_bars",
]
