"""The L2 test harness: real Binance BTCUSDT spot events and an L2PaperExchange to play them.

``L2Harness`` is an :class:`L2PaperExchange` on a virtual clock that keeps every report
it delivers; a test plays the real capture event by event and reads back what the venue
said. The other ``test_l2_*`` modules import it; the tests here check the harness itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from functools import cache
from itertools import count, pairwise
from typing import Any, TypeVar

from predator.core.clock import TimeWarp
from predator.market.depth_loader import read_binance_capture
from predator.market.instrument import Instrument
from predator.market.l2 import BookDelta, BookSnapshot, QuoteTick, TradeTick
from predator.testkit.data import shared_data_dir
from predator.venue import (
    CommissionModel,
    L2PaperExchange,
    L2Rules,
    LatencyModel,
    MarketData,
    OrderRequest,
    QueueModel,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
    VenueReport,
)

SPOT_0808 = "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
SYMBOL = "BTCUSDT"
R = TypeVar("R", bound=VenueReport)


@cache
def spot_events() -> tuple[MarketData, ...]:
    """The real spot capture of 2024-08-08 (23:54:13 .. 23:59:59), in receive order.

    Its REST depth snapshot is the 8th message: the deltas before it are replayed on top
    of it by the venue's sync procedure.
    """
    return tuple(read_binance_capture([shared_data_dir() / SPOT_0808], symbol=SYMBOL))


def _decimals(units: int, value: str) -> int:
    ratio = Decimal(units) / Decimal(value)
    assert ratio == Decimal(10) ** ratio.adjusted(), (units, value)
    return ratio.adjusted()


def _instrument() -> Instrument:
    """BTCUSDT at the decimals the reader gives, learnt from the capture's first trade
    (id 3735683259: ``"p":"61837.63000000","q":"0.02000000"``)."""
    first = next(e for e in spot_events() if isinstance(e, TradeTick))
    assert first.trade_id == 3735683259
    price, size = _decimals(first.price, "61837.63"), _decimals(first.size, "0.02")
    assert price >= 2 and size >= 5
    return Instrument(
        symbol=SYMBOL,
        venue="BINANCE",
        quote_currency="USDT",
        price_precision=price,
        size_precision=size,
        price_increment=10 ** (price - 2),
        size_increment=10 ** (size - 5),
    )


BTC = _instrument()
"""Binance spot BTCUSDT: tick 0.01 USDT, lots of 0.00001 BTC, at the reader's decimals."""
TICK = BTC.price_increment
"""0.01 USDT in price units."""


def px(price: str) -> int:
    """A USDT price in price units (``px("61828.25")``)."""
    scaled = Decimal(price).scaleb(BTC.price_precision)
    assert scaled == scaled.to_integral_value()
    return int(scaled)


def qty(quantity: str) -> int:
    """A BTC quantity in size units (``qty("0.001")``)."""
    scaled = Decimal(quantity).scaleb(BTC.size_precision)
    assert scaled == scaled.to_integral_value()
    return int(scaled)


def usdt(amount: str | int | Decimal) -> int:
    """``amount`` USDT in BTC's money units, exactly."""
    scaled = Decimal(amount).scaleb(BTC.money_precision)
    assert scaled == scaled.to_integral_value()
    return int(scaled)


class L2Harness:
    """An :class:`L2PaperExchange` over the real capture, collecting every report."""

    def __init__(
        self,
        *,
        cash: str | int = "10000000",
        commission: CommissionModel | None = None,
        latency: LatencyModel | None = None,
        queue_model: QueueModel | None = None,
        rules: L2Rules | None = None,
        events: Sequence[MarketData] | None = None,
        instrument: Instrument = BTC,
    ) -> None:
        self.events = spot_events() if events is None else events
        self.clock = TimeWarp.virtual(self.events[0].ts)
        self.reports: list[VenueReport] = []
        self.delivered_at: list[int] = []
        """Venue time at which each report of ``reports`` reached us."""
        self.initial_cash = usdt(cash)
        self.exchange = L2PaperExchange(
            clock=self.clock,
            instruments=[instrument],
            cash=self.initial_cash,
            commission=commission or CommissionModel(instrument),
            latency=latency,
            queue_model=queue_model,
            rules=rules,
            report=self._receive,
        )
        self.cursor = 0
        self._ids = count(1)

    def _receive(self, report: VenueReport) -> None:
        self.reports.append(report)
        self.delivered_at.append(self.exchange.now)

    # -- playing the data ---------------------------------------------------------------
    def step(self) -> MarketData:
        """Show the next event to the venue (the clock moves to its time first)."""
        event = self.events[self.cursor]
        self.cursor += 1
        if event.ts > self.clock.now_ns():
            self.clock.set(event.ts)
        self.exchange.on_market_data(event)
        return event

    def play(self, n: int) -> None:
        """Play the next ``n`` events."""
        for _ in range(n):
            self.step()

    def play_until(self, ts: int) -> None:
        """Play every event stamped at or before ``ts``; the clock ends at ``ts``."""
        while self.cursor < len(self.events) and self.events[self.cursor].ts <= ts:
            self.step()
        if ts > self.clock.now_ns():
            self.clock.set(ts)
        self.exchange.advance_to(ts)

    def play_to(self, index: int) -> None:
        """Play up to (excluding) event ``index``."""
        self.play(index - self.cursor)

    def remaining(self) -> Iterator[MarketData]:
        return iter(self.events[self.cursor :])

    # -- orders and reports -------------------------------------------------------------
    def submit(self, **fields: Any) -> OrderRequest:
        fields.setdefault("client_order_id", f"C{next(self._ids)}")
        fields.setdefault("symbol", BTC.symbol)
        request = OrderRequest(**fields)
        self.exchange.submit(request)
        return request

    def of_type(self, kind: type[R], client_order_id: str | None = None) -> list[R]:
        return [
            r
            for r in self.reports
            if isinstance(r, kind)
            and (client_order_id is None or r.client_order_id == client_order_id)
        ]

    def fills(self, client_order_id: str | None = None) -> list[VenueOrderFilled]:
        return self.of_type(VenueOrderFilled, client_order_id)

    def cancels(self, client_order_id: str | None = None) -> list[VenueOrderCanceled]:
        return self.of_type(VenueOrderCanceled, client_order_id)

    def rejections(self, client_order_id: str | None = None) -> list[VenueOrderRejected]:
        return self.of_type(VenueOrderRejected, client_order_id)

    def accepted(self, client_order_id: str | None = None) -> list[VenueOrderAccepted]:
        return self.of_type(VenueOrderAccepted, client_order_id)

    @property
    def book(self) -> Any:
        return self.exchange.book(BTC.symbol)


# -- the harness itself -------------------------------------------------------------------
def test_the_capture_holds_one_depth_snapshot_and_is_in_receive_order() -> None:
    events = spot_events()
    assert [i for i, e in enumerate(events) if isinstance(e, BookSnapshot)] == [7]
    assert all(a.ts <= b.ts for a, b in pairwise(events))
    kinds = {type(e) for e in events}
    assert kinds == {BookSnapshot, BookDelta, QuoteTick, TradeTick}


def test_the_venue_book_agrees_with_the_venues_own_best_quotes() -> None:
    # bookTicker is Binance's real-time top of book; after each 100 ms depth delta the
    # venue's rebuilt book must show what the last quote inside that delta showed.
    venue = L2Harness()
    quote: QuoteTick | None = None
    checked = 0
    for _ in range(len(venue.events)):
        event = venue.step()
        book = venue.book
        if isinstance(event, QuoteTick):
            quote = event
        elif isinstance(event, BookDelta) and quote is not None and venue.cursor > 8:
            assert book.valid  # from the snapshot (event 7) to the end: no gap
            if event.first_update_id <= quote.update_id <= event.last_update_id:
                assert book.best_bid() == (quote.bid_price, quote.bid_size)
                assert book.best_ask() == (quote.ask_price, quote.ask_size)
                checked += 1
    assert checked > 2000
