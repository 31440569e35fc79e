"""Market data: instruments, the Bar event and loaders for real OHLCV files.

Builds on ``predator.core`` only; venues, strategies and runs consume what it produces.
"""

from predator.market.bar import Bar
from predator.market.bar_loader import BarFeed, load_bars
from predator.market.errors import DataFormatError
from predator.market.instrument import Instrument
from predator.market.l2 import (
    BookDelta,
    BookSnapshot,
    OrderBookEvent,
    QuoteTick,
    TradeTick,
)
from predator.market.order_book import BookError, OrderBook, OrderLevelBook
from predator.market.status import MarketDataInvalidated, MarketDataRestored

__all__ = [
    "Bar",
    "BarFeed",
    "BookDelta",
    "BookError",
    "BookSnapshot",
    "DataFormatError",
    "Instrument",
    "MarketDataInvalidated",
    "MarketDataRestored",
    "OrderBook",
    "OrderBookEvent",
    "OrderLevelBook",
    "QuoteTick",
    "TradeTick",
    "load_bars",
]
