"""Books rebuilt from market data: an L2 book of price levels and a LOBSTER order-level book.

:class:`OrderBook` holds ``price -> size`` per side, fed by snapshots and deltas
(:mod:`predator.market.l2`); :class:`OrderLevelBook` keeps price-time FIFO queues of orders
per level and exposes the same L2 read methods. Prices and sizes are exact ints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from heapq import nlargest, nsmallest
from itertools import compress
from operator import not_

from predator.market.l2 import BUY, SELL, BookDelta, BookSnapshot, Level, OrderBookEvent

__all__ = ["BookError", "OrderBook", "OrderLevelBook"]

try:  # the compiled twin of update_flat's per-side work (optional: see setup.py)
    from predator.market._fastbook import update_side as _update_side
except ImportError:
    _update_side = None  # type: ignore[assignment]

_PROBES = 128  # price units searched next to a deleted best before a full scan


class BookError(ValueError):
    """A message cannot be applied to a book (unknown side, unknown order, negative size)."""


class OrderBook:
    """An L2 book of ``symbol``: the size resting at each price, per side.

    ``valid`` is False until a snapshot arrives and after :meth:`invalidate` (a sequence
    gap); readers still answer then, so a caller that must not trade blind checks it.
    ``last_update_id`` is the last update id applied (-1 before any snapshot).

    >>> book = OrderBook("BTCUSDT")
    >>> book.apply_snapshot(BookSnapshot(ts=0, symbol="BTCUSDT", last_update_id=7,
    ...     bids=((100, 5), (99, 1)), asks=((101, 2),)))
    >>> book.best_bid(), book.best_ask(), book.mid()
    ((100, 5), (101, 2), Fraction(201, 2))
    """

    __slots__ = (
        "_ask_dirty",
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bid_dirty",
        "_bids",
        "invalid_reason",
        "last_update_id",
        "symbol",
        "valid",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        # Cached best prices. Clean: exact (None: side empty). Dirty: the best left the
        # book and the cached price is a bound no level passes (None: unknown); the next
        # read searches from there (rare: most updates are away from the top).
        self._best_bid: int | None = None
        self._best_ask: int | None = None
        self._bid_dirty = False
        self._ask_dirty = False
        self.last_update_id = -1
        self.valid = False
        self.invalid_reason: str | None = "no snapshot yet"

    # -- writing -------------------------------------------------------------------------
    def apply_snapshot(self, snapshot: BookSnapshot) -> None:
        """Replace the whole book with ``snapshot``; the book becomes valid."""
        self.load(snapshot.bids, snapshot.asks, snapshot.last_update_id)

    def load(self, bids: Iterable[Level], asks: Iterable[Level], last_update_id: int) -> None:
        """Replace the book with iterables of ``(price, size)`` levels; the book becomes valid.

        Levels of size 0 are skipped.
        """
        self._bids = {p: q for p, q in bids if q}
        self._asks = {p: q for p, q in asks if q}
        self._bid_dirty = self._ask_dirty = True
        self._best_bid = self._best_ask = None
        self.last_update_id = last_update_id
        self.valid = True
        self.invalid_reason = None

    def apply_delta(self, delta: BookDelta) -> None:
        """Apply ``delta``'s levels (size 0 deletes) and advance ``last_update_id``.

        Sequence rules are not checked here: :class:`~predator.market.book_sync.BookSync`
        decides whether a delta may be applied.
        """
        self.update_levels(delta.bids, delta.asks)
        self.last_update_id = delta.last_update_id

    def update_levels(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Set each ``(price, size)`` of ``bids`` and ``asks``; size 0 deletes the level."""
        book = self._bids
        best = self._best_bid
        dirty = self._bid_dirty
        track = best is not None or not dirty
        for price, size in bids:
            if size:
                book[price] = size
                if track and (best is None or price > best):
                    best, dirty = price, False
            elif book.pop(price, None) is not None and price == best:
                dirty = True
        self._best_bid, self._bid_dirty = best, dirty
        book = self._asks
        best = self._best_ask
        dirty = self._ask_dirty
        track = best is not None or not dirty
        for price, size in asks:
            if size:
                book[price] = size
                if track and (best is None or price < best):
                    best, dirty = price, False
            elif book.pop(price, None) is not None and price == best:
                dirty = True
        self._best_ask, self._ask_dirty = best, dirty

    def update_flat(self, bids: Sequence[int], asks: Sequence[int]) -> None:
        """Like :meth:`update_levels` with flat ``[price, size, price, size, ...]`` lists.

        The bulk path of replays: levels are written by C-level dict updates, and the
        cached best moves only when the update sets a better price or deletes the best.
        """
        if _update_side is not None:  # the same, compiled
            if bids:
                self._best_bid, self._bid_dirty = _update_side(
                    self._bids, bids, self._best_bid, self._bid_dirty, True
                )
            if asks:
                self._best_ask, self._ask_dirty = _update_side(
                    self._asks, asks, self._best_ask, self._ask_dirty, False
                )
            return
        if bids:
            prices = bids[0::2]
            sizes = bids[1::2]
            book = self._bids
            book.update(zip(prices, sizes, strict=True))
            if 0 in sizes:  # deletions (a later duplicate may have revived a price)
                for price in compress(prices, map(not_, sizes)):
                    if book.get(price) == 0:
                        del book[price]
            best = self._best_bid
            if best is not None or not self._bid_dirty:
                top = max(prices)
                if best is None or top > best:
                    self._best_bid = top  # the best, or a bound above it if top was deleted
                    self._bid_dirty = not book.get(top)
                elif not book.get(best):
                    self._bid_dirty = True
        if asks:
            prices = asks[0::2]
            sizes = asks[1::2]
            book = self._asks
            book.update(zip(prices, sizes, strict=True))
            if 0 in sizes:
                for price in compress(prices, map(not_, sizes)):
                    if book.get(price) == 0:
                        del book[price]
            best = self._best_ask
            if best is not None or not self._ask_dirty:
                top = min(prices)
                if best is None or top < best:
                    self._best_ask = top
                    self._ask_dirty = not book.get(top)
                elif not book.get(best):
                    self._ask_dirty = True

    def set_level(self, side: str, price: int, size: int) -> None:
        """Set one level of ``side`` (``"buy"`` bids, ``"sell"`` asks); size 0 deletes it."""
        if size < 0:
            raise BookError(f"{self.symbol}: negative size {size} at {price}")
        level = ((price, size),)
        if side == BUY:
            self.update_levels(level, ())
        elif side == SELL:
            self.update_levels((), level)
        else:
            raise BookError(f"side must be 'buy' or 'sell', got {side!r}")

    def invalidate(self, reason: str) -> None:
        """Mark the book untrustworthy (a gap) until the next snapshot; levels are kept."""
        self.valid = False
        self.invalid_reason = reason

    def clear(self) -> None:
        """Empty both sides; the book is invalid until the next snapshot."""
        self._bids = {}
        self._asks = {}
        self._best_bid = self._best_ask = None
        self._bid_dirty = self._ask_dirty = False
        self.last_update_id = -1
        self.valid = False
        self.invalid_reason = "cleared"

    # -- reading -------------------------------------------------------------------------
    def best_bid(self) -> Level | None:
        """``(price, size)`` of the highest bid, or None when there is no bid."""
        best = self._best_bid
        if self._bid_dirty or best is None:
            best = self._best_bid = self._rescan(self._bids, best, 0)
            self._bid_dirty = False
            if best is None:
                return None
        return best, self._bids[best]

    def best_ask(self) -> Level | None:
        """``(price, size)`` of the lowest ask, or None when there is no ask."""
        best = self._best_ask
        if self._ask_dirty or best is None:
            best = self._best_ask = self._rescan(self._asks, best, 1)
            self._ask_dirty = False
            if best is None:
                return None
        return best, self._asks[best]

    def _rescan(self, book: dict[int, int], old: int | None, side: int) -> int | None:
        """The best price of one side (``side``: 0 bids, 1 asks) after ``old`` left it.

        ``old`` is a bound no live level passes (None: unknown). The new best is often a
        few price units away, so probe those first; a full scan settles the rest.
        """
        if old is not None:
            if book.get(old):
                return old
            step = -1 if side == 0 else 1
            price = old
            for _ in range(_PROBES):
                price += step
                if book.get(price):
                    return price
        if not book:
            return None
        return max(book) if side == 0 else min(book)

    def bids(self, depth: int = 10) -> list[Level]:
        """The best ``depth`` bid levels, best (highest price) first."""
        book = self._bids
        return [(p, book[p]) for p in nlargest(depth, book)]

    def asks(self, depth: int = 10) -> list[Level]:
        """The best ``depth`` ask levels, best (lowest price) first."""
        book = self._asks
        return [(p, book[p]) for p in nsmallest(depth, book)]

    def size_at(self, side: str, price: int) -> int:
        """Size resting at ``price`` on ``side`` (``"buy"`` bids, ``"sell"`` asks); 0 if none."""
        if side == BUY:
            return self._bids.get(price, 0)
        if side == SELL:
            return self._asks.get(price, 0)
        raise BookError(f"side must be 'buy' or 'sell', got {side!r}")

    def mid(self) -> Fraction | None:
        """Exact mid price (in price units), or None when a side is empty."""
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return Fraction(bid[0] + ask[0], 2)

    def spread(self) -> int | None:
        """Best ask minus best bid (price units), or None when a side is empty."""
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return ask[0] - bid[0]

    def depth(self) -> tuple[int, int]:
        """Number of ``(bid, ask)`` levels held."""
        return len(self._bids), len(self._asks)

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.symbol!r}, valid={self.valid}, last_update_id="
            f"{self.last_update_id}, best_bid={self.best_bid()}, best_ask={self.best_ask()})"
        )


class OrderLevelBook(OrderBook):
    """A price-time book of individual orders (LOBSTER), with the L2 read methods.

    Each level keeps its orders in arrival order (FIFO). A book seeded from L2 levels
    (:meth:`seed`) holds one anonymous order per level (negative id); a later message for
    an order the book never saw takes its size off that level's anonymous remainder.
    """

    __slots__ = ("_next_anonymous", "_orders", "_queues")

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        # side -> price -> {order_id: size} (dicts keep insertion order: the FIFO queue)
        self._queues: dict[str, dict[int, dict[int, int]]] = {BUY: {}, SELL: {}}
        self._orders: dict[int, tuple[str, int]] = {}  # order_id -> (side, price)
        self._next_anonymous = -1

    def seed(self, bids: Iterable[Level], asks: Iterable[Level], last_update_id: int = 0) -> None:
        """Start from L2 levels (``(price, size)`` iterables): one anonymous order each."""
        self.load((), (), last_update_id)
        self._queues = {BUY: {}, SELL: {}}
        self._orders = {}
        for side, levels in ((BUY, bids), (SELL, asks)):
            for price, size in levels:
                if size > 0:
                    self._add(side, self._anonymous_id(), price, size)

    def _anonymous_id(self) -> int:
        order_id = self._next_anonymous
        self._next_anonymous -= 1
        return order_id

    def apply(self, event: OrderBookEvent) -> None:
        """Apply one order-level message (see :class:`~predator.market.l2.OrderBookEvent`)."""
        action = event.action
        if action == "submit":
            if event.order_id in self._orders:
                raise BookError(f"{self.symbol}: order {event.order_id} submitted twice")
            self._add(event.side, event.order_id, event.price, event.size)
        elif action in ("cancel", "execute"):
            self._reduce(event, event.size)
        elif action == "delete":
            self._reduce(event, None)
        elif action not in ("execute_hidden", "cross", "halt"):
            raise BookError(f"{self.symbol}: unknown order action {action!r}")

    def replace_beyond(self, side: str, bound: int, levels: Iterable[Level]) -> int:
        """Replace every level of ``side`` worse than ``bound`` with ``levels`` beyond it.

        For data that only describes the top of the book (LOBSTER's N levels): what lies
        past the window is taken from the file, one anonymous order per level. Returns
        the number of levels taken.
        """
        queues = self._queue(side)
        sign = 1 if side == BUY else -1  # bids: worse is lower; asks: worse is higher

        def worse(price: int) -> bool:
            return (price - bound) * sign < 0

        for price in [p for p in queues if worse(p)]:
            for order_id in queues.pop(price):
                self._orders.pop(order_id, None)
            self.set_level(side, price, 0)
        taken = 0
        for price, size in levels:
            if worse(price) and size > 0:
                self._add(side, self._anonymous_id(), price, size)
                taken += 1
        return taken

    def orders_at(self, side: str, price: int) -> list[tuple[int, int]]:
        """``(order_id, size)`` resting at ``price`` on ``side``, first in line first."""
        return list(self._queue(side).get(price, {}).items())

    def queue_ahead(self, order_id: int) -> int:
        """Size resting ahead of ``order_id`` at its level (0 when it is first in line)."""
        side, price = self._orders[order_id]
        ahead = 0
        for other, size in self._queue(side)[price].items():
            if other == order_id:
                return ahead
            ahead += size
        raise AssertionError("unreachable: indexed order missing from its queue")

    def order(self, order_id: int) -> tuple[str, int, int] | None:
        """``(side, price, size)`` of a resting order, or None."""
        where = self._orders.get(order_id)
        if where is None:
            return None
        side, price = where
        return side, price, self._queue(side)[price][order_id]

    def _queue(self, side: str) -> dict[int, dict[int, int]]:
        try:
            return self._queues[side]
        except KeyError:
            raise BookError(f"side must be 'buy' or 'sell', got {side!r}") from None

    def _add(self, side: str, order_id: int, price: int, size: int) -> None:
        if size <= 0:
            raise BookError(f"{self.symbol}: order {order_id} with size {size}")
        self._queue(side).setdefault(price, {})[order_id] = size
        self._orders[order_id] = (side, price)
        self.set_level(side, price, self.size_at(side, price) + size)

    def _reduce(self, event: OrderBookEvent, size: int | None) -> None:
        """Take ``size`` (None: all) off ``event.order_id``; unknown ids hit the anonymous rest."""
        where = self._orders.get(event.order_id)
        if where is None:
            side, price, order_id = event.side, event.price, self._anonymous_at(event)
        else:
            side, price = where
            order_id = event.order_id
        queue = self._queue(side)[price]
        resting = queue[order_id]
        # A delete takes all of a known order, or the stated size off the anonymous rest.
        taken = size if size is not None else resting if where is not None else event.size
        if taken > resting:
            raise BookError(
                f"{self.symbol}: {event.action} of {taken} exceeds order {event.order_id}'s "
                f"{resting} at {price}"
            )
        if taken == resting:
            del queue[order_id]
            if order_id >= 0:
                del self._orders[order_id]
            if not queue:
                del self._queue(side)[price]
        else:
            queue[order_id] = resting - taken
        self.set_level(side, price, self.size_at(side, price) - taken)

    def _anonymous_at(self, event: OrderBookEvent) -> int:
        queue = self._queue(event.side).get(event.price, {})
        for order_id in queue:
            if order_id < 0:
                return order_id
        raise BookError(
            f"{self.symbol}: {event.action} of unknown order {event.order_id} at "
            f"{event.price} ({event.side}) with nothing resting there from before"
        )
