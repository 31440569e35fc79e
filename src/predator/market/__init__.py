"""Market data: instruments, the Bar event and loaders for real OHLCV files.

Builds on ``predator.core`` only; venues, strategies and runs consume what it produces.
"""

from predator.market.bar import Bar
from predator.market.bar_loader import BarFeed, load_bars
from predator.market.book_sync import BookSync
from predator.market.depth_loader import (
    BookCheckReport,
    check_binance_capture,
    detect_format,
    read_binance_capture,
    read_tdepth,
)
from predator.market.errors import DataFormatError
from predator.market.instrument import Instrument
from predator.market.l2 import (
    BUY,
    SELL,
    BookDelta,
    BookSnapshot,
    OrderBookEvent,
    QuoteTick,
    TradeTick,
)
from predator.market.lobster import LobsterReplay, read_lobster_messages, read_lobster_orderbook
from predator.market.order_book import BookError, OrderBook, OrderLevelBook
from predator.market.status import MarketDataInvalidated, MarketDataRestored

__all__ = [
    "BUY",
    "SELL",
    "Bar",
    "BarFeed",
    "BookCheckReport",
    "BookDelta",
    "BookError",
    "BookSnapshot",
    "BookSync",
    "DataFormatError",
    "Instrument",
    "LobsterReplay",
    "MarketDataInvalidated",
    "MarketDataRestored",
    "OrderBook",
    "OrderBookEvent",
    "OrderLevelBook",
    "QuoteTick",
    "TradeTick",
    "check_binance_capture",
    "detect_format",
    "load_bars",
    "read_binance_capture",
    "read_lobster_messages",
    "read_lobster_orderbook",
    "read_tdepth",
]
