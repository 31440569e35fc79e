"""Market maker: post-only bid and ask around the mid, skewed by inventory, within limits.

A level-2 strategy (it trades on ``on_quote``; on bars it does nothing): it keeps one
resting bid and one resting ask, re-quotes (cancel, then replace) when the price it
wants has moved far enough from the one resting, and stops quoting the side that would
push its inventory past the limit. It paces itself below the risk layer's order-rate
limit, so re-quoting never counts as a fault against its circuit breaker, and withdraws
its quotes while the node's book is invalid (a sequence gap) until it is resynchronised.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from math import ceil, floor
from typing import Any, ClassVar

from predator.core.numbers import from_decimal
from predator.market.l2 import QuoteTick
from predator.market.order_book import OrderBook
from predator.strategy.api import Strategy
from predator.venue.orders import Side

__all__ = ["MarketMaker"]

_MINUTE_NS = 60_000_000_000


class MarketMaker(Strategy):
    """Quotes ``size`` on both sides of the mid, post-only, with an inventory skew.

    Parameters (defaults in ``parameters``):

    * ``half_spread_ticks`` (1): distance of each quote from the mid, in ticks, rounded
      away from the mid to the tick (on a one-tick market, 1 rests one tick behind the
      best bid and ask; 0 joins them);
    * ``size`` ("0.001"): quantity of each quote, in instrument units (BTC);
    * ``max_inventory`` ("0.005"): the largest position either way; a side whose fill
      would exceed it is not quoted (and its resting quote is withdrawn);
    * ``skew_ticks`` (1): ticks both quotes move against the inventory per ``size`` of
      it (long: lower, to sell more readily and buy less), exact;
    * ``requote_ticks`` (2): a resting quote is replaced when the price wanted now is at
      least this many ticks away from its price;
    * ``requote_seconds`` ("1"): the least time between two orders on one side;
    * ``max_orders_per_minute`` (24): orders it sends in any rolling minute (keep it
      under the risk layer's ``max_orders_per_minute_strategy``, 30 by default).

    A quote never crosses the other side: a bid stays a tick below the lower of the
    quote's ask and the book's best ask (and an ask a tick above the higher bid), so a
    post-only order is not rejected for crossing when the feed and the venue agree.
    """

    name: ClassVar[str] = "market_maker"
    parameters: ClassVar[dict[str, Any]] = {
        "half_spread_ticks": 1,
        "size": "0.001",
        "max_inventory": "0.005",
        "skew_ticks": 1,
        "requote_ticks": 2,
        "requote_seconds": "1",
        "max_orders_per_minute": 24,
    }
    half_spread_ticks: int
    size: str
    max_inventory: str
    skew_ticks: int
    requote_ticks: int
    requote_seconds: str
    max_orders_per_minute: int

    def check_parameters(self) -> None:
        for key in ("half_spread_ticks", "skew_ticks"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.requote_ticks < 1:
            raise ValueError(f"requote_ticks must be >= 1, got {self.requote_ticks}")
        budget = self.max_orders_per_minute
        if budget < 2:
            raise ValueError(f"max_orders_per_minute must be >= 2, got {budget}")
        size = _positive("size", self.size)
        if _positive("max_inventory", self.max_inventory) < size:
            raise ValueError(f"max_inventory {self.max_inventory} is below one quote ({self.size})")
        seconds = _decimal("requote_seconds", self.requote_seconds)
        if seconds < 0:
            raise ValueError(f"requote_seconds must be >= 0, got {self.requote_seconds}")

    # -- lifecycle ----------------------------------------------------------------------
    def on_start(self) -> None:
        instrument = self.instrument
        precision = instrument.size_precision
        lot = instrument.size_increment
        self._tick = instrument.price_increment
        self._size = from_decimal(Decimal(self.size), precision, "floor") // lot * lot
        self._max_inventory = from_decimal(Decimal(self.max_inventory), precision, "floor")
        if self._size <= 0:
            raise ValueError(f"size {self.size} is below the instrument's lot")
        self._interval_ns = int(Decimal(self.requote_seconds) * 1_000_000_000)
        self._quotes: dict[Side, tuple[str, int]] = {}
        """Per side: the resting quote's client order id and price."""
        self._last_order_ns: dict[Side, int] = {}
        self._sent: deque[int] = deque()
        self._book: OrderBook | None = None

    def on_book(self, book: OrderBook) -> None:
        self._book = book

    def on_quote(self, quote: QuoteTick) -> None:
        book = self._book
        if book is None:
            return  # no synchronised book yet: quoting now would be blind
        working = set(self.open_orders)
        for side in (Side.BUY, Side.SELL):
            resting = self._quotes.get(side)
            if resting is not None and resting[0] not in working:
                del self._quotes[side]  # filled, canceled or rejected
        if not book.valid:
            # A gap in the depth stream: withdraw and wait for the resync (the risk
            # layer would refuse new quotes anyway).
            self._keep(Side.BUY, None)
            self._keep(Side.SELL, None)
            return
        bid, ask = self._wanted(quote)
        self._keep(Side.BUY, bid)
        self._keep(Side.SELL, ask)

    # -- quoting --------------------------------------------------------------------------
    def _wanted(self, quote: QuoteTick) -> tuple[int | None, int | None]:
        """The bid and ask to rest now (``None``: do not quote that side)."""
        tick, size = self._tick, self._size
        position = self.position
        center = Fraction(quote.bid_price + quote.ask_price, 2)
        center -= Fraction(position * self.skew_ticks * tick, size)
        half = self.half_spread_ticks * tick
        bid = floor((center - half) / tick) * tick
        ask = ceil((center + half) / tick) * tick
        best_bid, best_ask = quote.bid_price, quote.ask_price
        book = self._book
        if book is not None and book.valid:
            top_bid, top_ask = book.best_bid(), book.best_ask()
            if top_bid is not None:
                best_bid = max(best_bid, top_bid[0])
            if top_ask is not None:
                best_ask = min(best_ask, top_ask[0])
        bid = min(bid, best_ask - tick)
        ask = max(ask, best_bid + tick)
        limit = self._max_inventory
        return (
            bid if bid > 0 and position + size <= limit else None,
            ask if position - size >= -limit else None,
        )

    def _keep(self, side: Side, price: int | None) -> None:
        """Make the resting quote of ``side`` match ``price`` (withdraw it on ``None``)."""
        resting = self._quotes.get(side)
        if price is None:
            if resting is not None and self.cancel(resting[0]):
                del self._quotes[side]
            return
        if resting is not None and abs(price - resting[1]) < self.requote_ticks * self._tick:
            return
        now = self.ctx.now_ns()
        last = self._last_order_ns.get(side)
        if last is not None and now - last < self._interval_ns:
            return
        sent = self._sent
        while sent and sent[0] <= now - _MINUTE_NS:
            sent.popleft()
        if len(sent) >= self.max_orders_per_minute:
            return
        if resting is not None:
            self.cancel(resting[0])  # False: it filled meanwhile; the fill tells us
            del self._quotes[side]
        sent.append(now)
        self._last_order_ns[side] = now
        units = Decimal(self._size).scaleb(-self.instrument.size_precision)
        limit = Decimal(price).scaleb(-self.instrument.price_precision)
        order = self.buy if side is Side.BUY else self.sell
        client_order_id = order(units, limit=limit, post_only=True)
        if client_order_id is not None:
            self._quotes[side] = (client_order_id, price)


def _decimal(key: str, text: str) -> Decimal:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise ValueError(f"{key} must be a number, got {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"{key} must be a finite number, got {text!r}")
    return value


def _positive(key: str, text: str) -> Decimal:
    value = _decimal(key, text)
    if value <= 0:
        raise ValueError(f"{key} must be > 0, got {text}")
    return value
