"""The node's market-data feed on level-2 data: what the strategies and the risk layer see.

An L2 run publishes each capture event on the bus at its receive time, where the venue
matches on it. :class:`MarketDataFeed` observes the same events a market-data latency
later (none by default): it keeps the node's own book under Binance's sync rules (a gap
publishes ``MarketDataInvalidated``, a resync ``MarketDataRestored``), gives the risk
engine each quote's mid and every event's data time, and hands quotes, trades and book
updates to the strategy runners.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.core.events import Event
from predator.core.scheduler import ScenarioClock
from predator.market.book_sync import SPOT, USDM, BookSync
from predator.market.l2 import BookDelta, BookSnapshot, QuoteTick, TradeTick
from predator.market.order_book import OrderBook
from predator.market.status import MarketDataInvalidated, MarketDataRestored
from predator.risk.risk_engine import RiskEngine
from predator.strategy.runner import StrategyRunner
from predator.venue.latency import Delay

__all__ = ["MarketDataFeed", "quote_mid"]

L2Event = BookSnapshot | BookDelta | QuoteTick | TradeTick


def quote_mid(bid: int, ask: int) -> int:
    """The mid of a best bid and ask as a price int, rounded half-even (the venue's mark).

    >>> quote_mid(100, 102), quote_mid(100, 101), quote_mid(101, 102)
    (101, 100, 102)
    """
    total = bid + ask
    half, odd = divmod(total, 2)
    return half + (half & 1) if odd else half


class MarketDataFeed:
    """Observes one instrument's L2 events for the node (see the module docstring).

    ``delay`` is the market-data leg of the run's latency (``None``: the node sees an
    event the instant the venue does). Delayed events keep their order: each is observed
    no earlier than the one before it. Until the first depth snapshot synchronises the
    book the data is announced invalid, so the risk layer refuses new exposure from the
    first instant: a strategy never trades on quotes alone before the book is known.
    """

    def __init__(
        self,
        *,
        bus: MessageBus,
        clock: Clock,
        scheduler: ScenarioClock,
        risk: RiskEngine,
        runners: Sequence[StrategyRunner],
        symbol: str,
        delay: Delay | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._scheduler = scheduler
        self._risk = risk
        self._runners = tuple(runners)
        self.symbol = symbol
        self._delay = delay
        self.book = OrderBook(symbol)
        self.sync = BookSync(self.book, SPOT, publish=self._announce)
        self._awaiting_first_snapshot = False
        self.last_observed_at: int | None = None
        """Kernel time of the last delayed observation scheduled (``None``: none yet)."""
        self.quotes = 0
        self.trades = 0
        self.book_updates = 0
        bus.subscribe(QuoteTick, self._receive)
        bus.subscribe(TradeTick, self._receive)
        bus.subscribe(BookDelta, self._receive)
        bus.subscribe(BookSnapshot, self._receive)

    def start(self) -> None:
        """Announce that there is no book yet (before the first market-data event)."""
        self._awaiting_first_snapshot = True
        self._bus.publish(
            MarketDataInvalidated(
                ts=self._clock.now_ns(),
                symbol=self.symbol,
                reason="no depth snapshot yet: the book is not synchronised",
            )
        )

    def _announce(self, event: Event) -> None:
        """Publish a market-status fact at the time the node learnt it: with market-data
        latency that is later than the data's own time, and the journal stays in order."""
        now = self._clock.now_ns()
        if event.ts < now:
            event = msgspec.structs.replace(event, ts=now)
        self._bus.publish(event)

    # -- receiving -------------------------------------------------------------------------
    def _receive(self, event: L2Event) -> None:
        if event.symbol != self.symbol:
            return
        delay = self._delay
        if delay is None:
            self._observe(event)
            return
        at = max(event.ts + delay.sample(event.ts), self._clock.now_ns())
        if self.last_observed_at is not None:
            at = max(at, self.last_observed_at)
        self.last_observed_at = at
        self._scheduler.schedule(at, self._observe, event)

    def _observe(self, event: L2Event) -> None:
        if isinstance(event, QuoteTick):
            self._on_quote(event)
        elif isinstance(event, TradeTick):
            self._on_trade(event)
        elif isinstance(event, BookDelta):
            self._on_delta(event)
        else:
            self._on_snapshot(event)

    # -- observing -------------------------------------------------------------------------
    def _on_quote(self, quote: QuoteTick) -> None:
        self.quotes += 1
        symbol = quote.symbol
        self._risk.last_data_ts[symbol] = quote.ts
        if quote.bid_price <= 0 or quote.ask_price <= 0:
            return  # an empty side: no mid to give anyone
        mid = quote_mid(quote.bid_price, quote.ask_price)
        # As the risk engine takes a bar's close: the price its band and exposure use.
        self._risk.last_price[symbol] = mid
        for runner in self._runners:
            runner.on_quote(quote, mid)

    def _on_trade(self, trade: TradeTick) -> None:
        self.trades += 1
        self._risk.last_data_ts[trade.symbol] = trade.ts
        for runner in self._runners:
            runner.on_trade(trade)

    def _on_delta(self, delta: BookDelta) -> None:
        sync = self.sync
        if delta.prev_update_id >= 0:
            sync.market = USDM  # only USD-M diffs carry ``pu``
        if sync.apply_delta(delta):
            self._book_changed(delta.ts)

    def _on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.sync.apply_snapshot(snapshot)
        if not self.sync.synced:
            return
        if self._awaiting_first_snapshot:
            # BookSync announces resyncs after a gap; the first sync is announced here.
            self._awaiting_first_snapshot = False
            self._announce(MarketDataRestored(ts=snapshot.ts, symbol=self.symbol))
        self._book_changed(snapshot.ts)

    def _book_changed(self, ts: int) -> None:
        self.book_updates += 1
        self._risk.last_data_ts[self.symbol] = ts
        book = self.book
        if not book.valid:
            return
        for runner in self._runners:
            runner.on_book(book)
