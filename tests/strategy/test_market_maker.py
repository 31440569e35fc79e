"""The market maker's quoting rules, on a desk that records what it sends.

A ``Desk`` stands in for the runner: it approves every intent (unless told to deny),
keeps the working orders and answers cancels, so each rule is checked on the exact
orders the strategy would send. The end-to-end run on the real capture is in
``tests/e2e/test_l2_market_maker.py``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from predator.market import Instrument, OrderBook, QuoteTick
from predator.strategy import MarketMaker, Sizing, StrategyContext, StrategyError, build_strategy
from predator.venue import OrderRequest, OrderType, Side

BTC = Instrument(
    symbol="BTCUSDT",
    venue="BINANCE",
    quote_currency="USDT",
    price_precision=2,
    size_precision=8,
    price_increment=1,
    size_increment=1_000,
)
"""BTCUSDT spot as the capture reader gives it: tick 0.01, lot 0.00001, sizes at 8 dp."""
NS = 1_000_000_000


def px(text: str) -> int:
    return int(Decimal(text).scaleb(BTC.price_precision))


def qty(text: str) -> int:
    return int(Decimal(text).scaleb(BTC.size_precision))


class Desk:
    """The runner's side of the strategy API, recording every request and cancel."""

    def __init__(self, **params: Any) -> None:
        self.requests: list[OrderRequest] = []
        self.cancels: list[str] = []
        self.working: dict[str, OrderRequest] = {}
        self.position = 0
        self.now = 1_000 * NS
        self.deny = False
        self._ids = 0
        self.book = OrderBook("BTCUSDT")
        strategy = build_strategy("market_maker", params)
        assert isinstance(strategy, MarketMaker)
        self.mm = strategy
        strategy.bind(
            StrategyContext(
                name="market_maker",
                instrument=BTC,
                sizing=Sizing.parse("all-in"),
                submit=self._submit,
                position=lambda: self.position,
                now_ns=lambda: self.now,
                cancel=self._cancel,
                open_orders=lambda: list(self.working),
            )
        )
        strategy.on_start()

    def _submit(self, request: OrderRequest) -> bool:
        if self.deny:
            return False
        self.requests.append(request)
        self.working[request.client_order_id] = request
        return True

    def _cancel(self, client_order_id: str) -> bool:
        if self.working.pop(client_order_id, None) is None:
            return False
        self.cancels.append(client_order_id)
        return True

    def market(self, bid: str, ask: str, *, seconds: float = 0, book: bool = True) -> None:
        """Time passes, the book shows ``bid``/``ask`` on top, then the quote arrives."""
        self.now += int(seconds * NS)
        if book:
            self._ids += 1
            self.book.load([(px(bid), qty("1"))], [(px(ask), qty("1"))], self._ids)
            self.mm.on_book(self.book)
        self.mm.on_quote(
            QuoteTick(
                ts=self.now,
                symbol="BTCUSDT",
                update_id=self._ids,
                bid_price=px(bid),
                bid_size=qty("1"),
                ask_price=px(ask),
                ask_size=qty("1"),
            )
        )

    def resting(self) -> dict[Side, int | None]:
        """The limit price resting on each side (``None``: none)."""
        prices: dict[Side, int | None] = {Side.BUY: None, Side.SELL: None}
        for request in self.working.values():
            prices[request.side] = request.limit_price
        return prices

    def fill(self, side: Side) -> None:
        """The resting quote of ``side`` fills in full."""
        for client_order_id, request in list(self.working.items()):
            if request.side is side:
                del self.working[client_order_id]
                self.position += side * request.quantity


# -- quoting ------------------------------------------------------------------------------


def test_it_quotes_post_only_limits_a_tick_behind_a_one_tick_market() -> None:
    desk = Desk()
    desk.market("61837.63", "61837.64")

    assert desk.resting() == {Side.BUY: px("61837.62"), Side.SELL: px("61837.65")}
    assert len(desk.requests) == 2
    for request in desk.requests:
        assert request.order_type is OrderType.LIMIT
        assert request.post_only and request.quantity == qty("0.001")


def test_half_spread_zero_joins_the_best_bid_and_ask() -> None:
    desk = Desk(half_spread_ticks=0)
    desk.market("61837.63", "61837.64")

    assert desk.resting() == {Side.BUY: px("61837.63"), Side.SELL: px("61837.64")}


def test_quotes_sit_half_spread_ticks_from_the_mid_of_a_wide_market() -> None:
    desk = Desk(half_spread_ticks=3)
    desk.market("100.00", "100.10")

    assert desk.resting() == {Side.BUY: px("100.02"), Side.SELL: px("100.08")}


def test_a_long_inventory_skews_both_quotes_down() -> None:
    desk = Desk(skew_ticks=1)
    desk.position = qty("0.002")  # two quotes' worth
    desk.market("100.00", "100.10")

    # Mid 100.05 moves 2 ticks down to 100.03; one tick either side.
    assert desk.resting() == {Side.BUY: px("100.02"), Side.SELL: px("100.04")}


def test_a_short_inventory_skews_both_quotes_up() -> None:
    desk = Desk(skew_ticks=2)
    desk.position = -qty("0.001")
    desk.market("100.00", "100.10")

    assert desk.resting() == {Side.BUY: px("100.06"), Side.SELL: px("100.08")}


def test_a_quote_never_crosses_the_other_side_of_the_quote_or_the_book() -> None:
    desk = Desk(half_spread_ticks=0, skew_ticks=5)
    desk.position = -qty("0.004")  # skewed 20 ticks up: the bid would cross the ask
    desk.market("100.00", "100.10")

    assert desk.resting()[Side.BUY] == px("100.09")
    # The depth book is behind the quote: its best ask (100.05) bounds the bid too.
    desk2 = Desk(half_spread_ticks=0, skew_ticks=5)
    desk2.position = -qty("0.004")
    desk2.book.load([(px("100.00"), qty("1"))], [(px("100.05"), qty("1"))], 1)
    desk2.mm.on_book(desk2.book)
    desk2.market("100.00", "100.10", book=False)
    assert desk2.resting()[Side.BUY] == px("100.04")


def test_no_side_is_quoted_past_the_inventory_limit() -> None:
    desk = Desk(max_inventory="0.002")
    desk.market("100.00", "100.10")
    desk.fill(Side.BUY)
    desk.market("100.00", "100.10", seconds=2)
    desk.fill(Side.BUY)  # long 0.002: at the limit
    desk.market("100.00", "100.10", seconds=2)

    assert desk.position == qty("0.002")
    assert desk.resting()[Side.BUY] is None
    assert desk.resting()[Side.SELL] is not None
    assert all(r.side is Side.SELL for r in desk.working.values())


def test_a_resting_quote_is_withdrawn_when_inventory_reaches_the_limit() -> None:
    desk = Desk(max_inventory="0.001")
    desk.market("100.00", "100.10")
    bid = next(c for c, r in desk.working.items() if r.side is Side.BUY)
    desk.position = qty("0.001")  # filled elsewhere (another quote, a manual trade)
    desk.market("100.00", "100.10", seconds=2)

    assert bid in desk.cancels
    assert desk.resting()[Side.BUY] is None


# -- re-quoting ---------------------------------------------------------------------------


def test_it_requotes_only_when_the_wanted_price_moved_requote_ticks() -> None:
    desk = Desk(requote_ticks=2)
    desk.market("100.00", "100.01")
    first = list(desk.working)
    desk.market("100.01", "100.02", seconds=2)  # 1 tick: keep the quotes

    assert list(desk.working) == first and desk.cancels == []
    desk.market("100.02", "100.03", seconds=2)  # 2 ticks from the resting ones: replace
    assert sorted(desk.cancels) == sorted(first)
    assert desk.resting() == {Side.BUY: px("100.01"), Side.SELL: px("100.04")}


def test_requotes_are_paced_by_requote_seconds() -> None:
    desk = Desk(requote_seconds="1")
    desk.market("100.00", "100.01")
    desk.market("100.05", "100.06", seconds=0.5)  # moved, but too soon
    assert len(desk.requests) == 2

    desk.market("100.05", "100.06", seconds=0.5)
    assert len(desk.requests) == 4
    assert desk.resting() == {Side.BUY: px("100.04"), Side.SELL: px("100.07")}


def test_it_sends_at_most_max_orders_per_minute() -> None:
    desk = Desk(requote_seconds="0", max_orders_per_minute=10)
    for step in range(40):  # the market runs away 5 ticks a second for 40 s
        price = Decimal("100.00") + Decimal(step) * Decimal("0.05")
        desk.market(str(price), str(price + Decimal("0.01")), seconds=1)

    times = [int(r.client_order_id.split("-")[-2]) for r in desk.requests]
    assert all(sum(1 for t in times if 0 <= now - t < 60 * NS) <= 10 for now in times)
    assert len(desk.requests) == 10


def test_a_filled_quote_is_replaced_on_the_next_quote() -> None:
    desk = Desk()
    desk.market("100.00", "100.10")
    desk.fill(Side.SELL)
    desk.market("100.00", "100.10", seconds=2)

    assert desk.position == -qty("0.001")
    assert desk.resting()[Side.SELL] is not None and len(desk.requests) == 3


def test_a_denied_quote_is_retried_after_requote_seconds() -> None:
    desk = Desk()
    desk.deny = True
    desk.market("100.00", "100.10")
    desk.deny = False
    desk.market("100.00", "100.10", seconds=0.5)
    assert desk.working == {}

    desk.market("100.00", "100.10", seconds=0.5)
    assert len(desk.working) == 2


# -- blind markets ------------------------------------------------------------------------


def test_nothing_is_quoted_before_the_first_book() -> None:
    desk = Desk()
    desk.market("100.00", "100.10", book=False)

    assert desk.requests == []


def test_quotes_are_withdrawn_while_the_book_is_invalid_and_come_back_after() -> None:
    desk = Desk()
    desk.market("100.00", "100.10")
    desk.book.invalidate("depth gap")
    desk.market("100.00", "100.10", seconds=2, book=False)

    assert desk.working == {} and len(desk.cancels) == 2
    desk.market("100.00", "100.10", seconds=2)  # resynchronised
    assert len(desk.working) == 2


# -- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"size": "0"}, "size must be > 0"),
        ({"size": "abc"}, "size must be a number"),
        ({"max_inventory": "0.0005"}, "below one quote"),
        ({"requote_ticks": 0}, "requote_ticks must be >= 1"),
        ({"half_spread_ticks": -1}, "half_spread_ticks must be >= 0"),
        ({"max_orders_per_minute": 1}, "max_orders_per_minute must be >= 2"),
        ({"requote_seconds": "-1"}, "requote_seconds must be >= 0"),
        ({"spread": 3}, "unknown parameter 'spread'"),
    ],
)
def test_bad_parameters_are_one_clear_error(params: dict[str, Any], message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        build_strategy("market_maker", params)


def test_parameters_are_documented_with_their_defaults() -> None:
    doc = MarketMaker.__doc__ or ""
    for name, default in MarketMaker.parameters.items():
        assert f"``{name}`` ({json.dumps(default)})" in doc
