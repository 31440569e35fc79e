"""Level-2 and order-level market-data events: book snapshots, depth deltas, quotes, trades.

Readers in :mod:`predator.market.depth_loader` produce them from real captures (Binance
websocket, Binance ``T_DEPTH`` archives, LOBSTER); :mod:`predator.market.order_book` builds
books from them and the paper venue fills against those books.

Conventions shared by every event here:

- prices and sizes are exact ints at the instrument's precision
  (``price = value * 10**price_precision``, ``size = quantity * 10**size_precision``);
- ``ts`` is ns since epoch (UTC). For Binance captures it is the recorder's local receive
  stamp (the order the messages were seen in); the exchange's own time is ``exchange_ts``
  (ns, 0 when the message carries none);
- a side is the string ``"buy"`` (bids) or ``"sell"`` (asks).
"""

from __future__ import annotations

from typing import ClassVar, Final

from predator.core.events import Event

__all__ = [
    "BUY",
    "LOBSTER_ACTIONS",
    "SELL",
    "BookDelta",
    "BookSnapshot",
    "Level",
    "OrderBookEvent",
    "QuoteTick",
    "TradeTick",
]

BUY: Final = "buy"
"""The bid side / a buyer-initiated trade."""
SELL: Final = "sell"
"""The ask side / a seller-initiated trade."""

Level = tuple[int, int]
"""One price level: ``(price, size)`` as ints at the instrument's precision."""

LOBSTER_ACTIONS: Final = (
    "submit",
    "cancel",
    "delete",
    "execute",
    "execute_hidden",
    "cross",
    "halt",
)
""":attr:`OrderBookEvent.action` values, in LOBSTER's event-type order (type 1..7)."""


class BookSnapshot(Event, frozen=True, kw_only=True):
    """The full book of ``symbol`` as of update id ``last_update_id`` (a REST depth snapshot).

    ``bids`` are best (highest) first, ``asks`` best (lowest) first; every size is > 0.
    """

    journaled: ClassVar[bool] = False
    symbol: str
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    exchange_ts: int = 0


class BookDelta(Event, frozen=True, kw_only=True):
    """Changed levels of ``symbol`` covering update ids ``first_update_id..last_update_id``.

    A size of 0 deletes the level; any other size replaces it. ``prev_update_id`` is the
    ``last_update_id`` of the delta before this one when the venue says so (Binance USD-M
    ``pu``), else -1. Levels are in the venue's order (not necessarily best first).
    """

    journaled: ClassVar[bool] = False
    symbol: str
    first_update_id: int
    last_update_id: int
    prev_update_id: int = -1
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    exchange_ts: int = 0


class QuoteTick(Event, frozen=True, kw_only=True):
    """The venue's own best bid and ask of ``symbol`` as of ``update_id`` (Binance bookTicker)."""

    journaled: ClassVar[bool] = False
    symbol: str
    update_id: int
    bid_price: int
    bid_size: int
    ask_price: int
    ask_size: int
    exchange_ts: int = 0


class TradeTick(Event, frozen=True, kw_only=True):
    """A trade of ``symbol`` on the venue.

    ``aggressor`` is the taker's side: ``"buy"`` when a buy order lifted an ask, ``"sell"``
    when a sell order hit a bid (Binance ``m`` = buyer is maker -> ``"sell"``).
    """

    journaled: ClassVar[bool] = False
    symbol: str
    trade_id: int
    price: int
    size: int
    aggressor: str
    exchange_ts: int = 0


class OrderBookEvent(Event, frozen=True, kw_only=True):
    """One order-level message (a LOBSTER message row) of ``symbol``.

    ``action`` is one of :data:`LOBSTER_ACTIONS`:

    - ``submit``: a new visible limit order ``order_id`` of ``size`` at ``price``;
    - ``cancel``: ``size`` is taken off order ``order_id`` (partial cancellation);
    - ``delete``: order ``order_id`` leaves the book (``size`` is what it still had);
    - ``execute``: ``size`` of visible order ``order_id`` traded;
    - ``execute_hidden``: a hidden order traded (the visible book does not change);
    - ``cross``: an auction cross trade; ``halt``: a trading halt message (``price`` -1
      halt, 0 quote, 1 resume), neither changes the visible book.

    ``side`` is the side of the resting order (``"buy"`` bid, ``"sell"`` ask), so an
    execution of a ``"buy"`` order was a sell-initiated trade. ``ts`` is ns after midnight
    of the trading day, exchange local time, as LOBSTER writes it.
    """

    journaled: ClassVar[bool] = False
    symbol: str
    order_id: int
    action: str
    side: str
    price: int
    size: int
