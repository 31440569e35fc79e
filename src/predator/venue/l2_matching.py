"""Matching our orders against a replayed L2 book: walking levels, remembering what we took.

A replayed book never learns that our paper orders took liquidity. :class:`DepthView`
lays our consumption over the :class:`~predator.market.order_book.OrderBook`: a level we
took from shows less until the next book update of that level (the update that states
its new size), so the same liquidity is never taken twice. :func:`walk` fills a taker
order level by level (VWAP across the book, slippage from real depth).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

from predator.market.l2 import BUY, SELL
from predator.market.order_book import OrderBook
from predator.venue.orders import Side

__all__ = ["DepthView", "Walk", "book_side", "walk"]

_DEPTH_STEP = 32  # levels read per batch when a walk goes deep


def book_side(side: Side) -> str:
    """The book side an order of ``side`` rests on (``"buy"`` bids / ``"sell"`` asks)."""
    return BUY if side is Side.BUY else SELL


def _opposite(side: Side) -> str:
    return SELL if side is Side.BUY else BUY


class DepthView:
    """The book of one symbol minus the depth our taker fills consumed.

    ``consumed[(side, price)]`` is what we took at that level since the book last
    stated it; :meth:`refreshed` (called for every level a delta or snapshot sets)
    forgets it, because the venue's new size is the truth from then on.
    """

    __slots__ = ("book", "consumed")

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.consumed: dict[tuple[str, int], int] = {}

    def size_at(self, side: str, price: int) -> int:
        """Displayed size at ``price`` on ``side`` minus what we took there."""
        shown = self.book.size_at(side, price)
        return max(0, shown - self.consumed.get((side, price), 0))

    def levels(self, side: str) -> Iterable[tuple[int, int]]:
        """``(price, size)`` of ``side``, best first, net of our consumption (lazy)."""
        read = self.book.bids if side == BUY else self.book.asks
        depth = _DEPTH_STEP
        seen = 0
        while True:
            batch = read(depth)
            for price, size in batch[seen:]:
                left = size - self.consumed.get((side, price), 0)
                if left > 0:
                    yield price, left
            if len(batch) < depth:
                return
            seen = len(batch)
            depth *= 4

    def best(self, side: str) -> tuple[int, int] | None:
        """The best level of ``side`` net of our consumption, or ``None``."""
        return next(iter(self.levels(side)), None)

    def consume(self, side: str, price: int, size: int) -> None:
        """Remember that we took ``size`` at ``price`` on ``side``."""
        key = (side, price)
        self.consumed[key] = self.consumed.get(key, 0) + size

    def refreshed(self, side: str, price: int) -> None:
        """The venue restated this level: our past consumption no longer applies."""
        if self.consumed:
            self.consumed.pop((side, price), None)

    def reset(self) -> None:
        """A snapshot restated every level."""
        self.consumed.clear()


class Walk:
    """The result of walking the book: the ``(price, quantity)`` legs, best first."""

    __slots__ = ("legs", "quantity")

    def __init__(self, legs: list[tuple[int, int]]) -> None:
        self.legs = legs
        self.quantity = sum(quantity for _, quantity in legs)

    @property
    def vwap(self) -> Fraction | None:
        """Exact volume-weighted average price of the legs (``None`` when empty)."""
        if not self.quantity:
            return None
        return Fraction(sum(p * q for p, q in self.legs), self.quantity)

    def __repr__(self) -> str:
        return f"Walk({self.legs!r})"


def walk(
    view: DepthView,
    side: Side,
    quantity: int | None,
    *,
    limit: int | None = None,
    increment: int = 1,
    affordable: Callable[[int, int], int] | None = None,
) -> Walk:
    """Take liquidity for an order of ``side`` from the opposite side of ``view``.

    Walks levels best first until ``quantity`` is met (``None``: as much as
    ``affordable`` allows), never beyond ``limit`` (a limit price); the total is a
    multiple of ``increment``. ``affordable(price, wanted)`` may cap each leg (margin sizing).
    Nothing is consumed: the caller commits the walk with :meth:`DepthView.consume`.
    """
    legs: list[tuple[int, int]] = []
    left = quantity
    for price, size in view.levels(_opposite(side)):
        if left is not None and left <= 0:
            break
        if limit is not None and (price > limit if side is Side.BUY else price < limit):
            break
        wanted = size if left is None else min(size, left)
        take = wanted if affordable is None else min(wanted, affordable(price, wanted))
        if take > 0:
            legs.append((price, take))
            if left is not None:
                left -= take
        if take < wanted:
            break  # the budget ran out inside this level
    # The total must be a whole number of size increments: trim from the worst leg.
    excess = sum(q for _, q in legs) % increment
    while excess:
        price, last = legs.pop()
        cut = min(last, excess)
        if last > cut:
            legs.append((price, last - cut))
        excess -= cut
    return Walk(legs)
