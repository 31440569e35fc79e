"""Specs for the L2 paper exchange on the real Binance BTCUSDT spot capture of 2024-08-08.

Prices are ints at 0.01 USDT, sizes at 1e-8 BTC (100_000 = 0.001 BTC). Expected numbers
are worked out from the raw events in each test, independently of the venue's code.
"""

from __future__ import annotations

from fractions import Fraction

from test_l2_harness import BTC, TICK, L2Harness, px, qty, spot_events, usdt

from predator.market.depth_loader import read_binance_capture
from predator.market.instrument import Instrument
from predator.market.l2 import BookDelta, QuoteTick, TradeTick
from predator.testkit.data import shared_data_dir
from predator.venue import (
    CommissionModel,
    Liquidity,
    OrderType,
    ProbQueue,
    RejectReason,
    RiskAverseQueue,
    Side,
    TimeInForce,
    log_queue,
    power_queue,
)

LOT = qty("0.00001")
MILLI = qty("0.001")

# A quiet stretch found in the capture: right after the depth delta received at JOIN_TS
# the best bid is 61828.25 with 0.12693 BTC displayed; sell-initiated trades at that
# price consume exactly that queue and then trade 3735684727 (0.01464 BTC) goes through
# it, 2.53 s later. Meanwhile the level also shrank by cancels, never below our queue.
JOIN_TS = 1_723_161_318_666_834_793
JOIN_PRICE, JOIN_AHEAD = px("61828.25"), qty("0.12693")
FILLING_TRADE_ID = 3735684727


def index_at(ts: int) -> int:
    return next(i for i, event in enumerate(spot_events()) if event.ts == ts)


def joined_best_bid(venue: L2Harness, quantity: int = MILLI) -> str:
    venue.play_to(index_at(JOIN_TS) + 1)
    assert venue.book.best_bid() == (JOIN_PRICE, JOIN_AHEAD)
    order = venue.submit(
        side=Side.BUY, order_type=OrderType.LIMIT, limit_price=JOIN_PRICE, quantity=quantity
    )
    return order.client_order_id


# -- queue position -----------------------------------------------------------------------
def test_limit_order_at_the_best_bid_fills_only_when_real_trades_have_eaten_its_queue() -> None:
    venue = L2Harness(queue_model=RiskAverseQueue())
    client_order_id = joined_best_bid(venue)
    state = venue.exchange.order_state(client_order_id)
    assert state is not None and state.queue_ahead == JOIN_AHEAD

    traded = 0  # sell-initiated volume at our price since we joined
    traded_since_update = 0
    cancels = 0
    level = JOIN_AHEAD
    while True:
        event = venue.step()
        if isinstance(event, TradeTick) and event.price == JOIN_PRICE:
            assert event.aggressor == "sell"
            traded += event.size
            traded_since_update += event.size
            if traded > JOIN_AHEAD:
                break
        assert event.ts < venue.events[-1].ts
        assert venue.fills() == [], "filled before the queue ahead was consumed"
        if isinstance(event, BookDelta):
            for price, size in event.bids:
                if price == JOIN_PRICE:
                    if level - size > traded_since_update:
                        cancels += 1  # the level lost more than what traded: cancels
                    level, traded_since_update = size, 0
        state = venue.exchange.order_state(client_order_id)
        assert state is not None
        assert state.queue_ahead == JOIN_AHEAD - traded  # cancels never moved us up

    assert cancels >= 3
    assert event.trade_id == FILLING_TRADE_ID
    (fill,) = venue.fills()
    assert fill.ts == event.ts  # the time of the trade that exhausted the queue
    assert (fill.price, fill.quantity, fill.leaves_quantity) == (JOIN_PRICE, MILLI, 0)
    assert fill.liquidity is Liquidity.MAKER
    assert traded - JOIN_AHEAD == event.size  # the queue was exactly used up before it


def test_probabilistic_queue_models_credit_cancels_and_fill_the_same_order_earlier() -> None:
    def fill_ts(model: object) -> int:
        venue = L2Harness(queue_model=model)  # type: ignore[arg-type]
        joined_best_bid(venue)
        while not venue.fills():
            venue.step()
        return venue.fills()[0].ts

    risk_averse = fill_ts(RiskAverseQueue())
    for model in (ProbQueue(power_queue(2)), ProbQueue(log_queue)):
        assert fill_ts(model) < risk_averse


def test_excess_trade_volume_fills_part_of_a_larger_order() -> None:
    venue = L2Harness()
    client_order_id = joined_best_bid(venue, quantity=qty("0.02"))
    while not venue.fills():
        venue.step()
    (fill,) = venue.fills()
    excess, rest = qty("0.01464"), qty("0.00536")
    assert (fill.quantity, fill.leaves_quantity) == (excess, rest)  # the excess only
    state = venue.exchange.order_state(client_order_id)
    assert state is not None and (state.filled, state.leaves, state.queue_ahead) == (
        excess,
        rest,
        0,
    )


def first_reach(events: object, bid: int) -> tuple[str, int]:
    """The first event that reaches a resting bid with nothing displayed ahead of it."""
    for event in events:  # type: ignore[attr-defined]
        if isinstance(event, TradeTick) and event.price < bid:
            return "trade through", event.ts
        if isinstance(event, TradeTick) and event.price == bid and event.aggressor == "sell":
            return "trade at", event.ts
        if isinstance(event, QuoteTick) and event.ask_price <= bid:
            return "quote crossed", event.ts
        if isinstance(event, BookDelta) and any(p <= bid for p, q in event.asks if q):
            return "book crossed", event.ts
    raise AssertionError("never reached")


def rest_bid_under_the_market(venue: L2Harness, dollars: int) -> tuple[str, int]:
    venue.play_until(JOIN_TS)
    bid = JOIN_PRICE - dollars * 100 * TICK
    order = venue.submit(side=Side.BUY, order_type=OrderType.LIMIT, limit_price=bid, quantity=MILLI)
    assert venue.exchange.order_state(order.client_order_id).queue_ahead == 0
    return order.client_order_id, bid


def test_a_resting_bid_fills_in_full_when_the_venues_best_ask_crosses_it() -> None:
    venue = L2Harness()
    client_order_id, bid = rest_bid_under_the_market(venue, 1)
    kind, ts = first_reach(venue.remaining(), bid)
    assert kind == "quote crossed"  # bookTicker is the first to show the ask at our bid
    venue.play_until(ts - 1)
    assert venue.fills() == []
    venue.play_until(ts)
    (fill,) = venue.fills(client_order_id)
    assert (fill.ts, fill.price, fill.quantity, fill.liquidity) == (
        ts,
        bid,
        MILLI,
        Liquidity.MAKER,
    )


def test_a_trade_below_a_resting_bid_fills_it_in_full_at_its_price() -> None:
    # Without the bookTicker stream, a trade under our bid is the first sign, 5 USDT down.
    venue = L2Harness(events=[e for e in spot_events() if not isinstance(e, QuoteTick)])
    client_order_id, bid = rest_bid_under_the_market(venue, 5)
    kind, ts = first_reach(venue.remaining(), bid)
    assert kind == "trade through"
    venue.play_until(ts - 1)
    assert venue.fills() == []
    venue.play_until(ts)
    (fill,) = venue.fills(client_order_id)
    assert (fill.ts, fill.price, fill.quantity, fill.leaves_quantity) == (ts, bid, MILLI, 0)


# -- walking the book ---------------------------------------------------------------------
def test_market_buy_larger_than_the_top_level_fills_at_the_vwap_of_the_levels_walked() -> None:
    venue = L2Harness(commission=CommissionModel(BTC, rate="0.001"))
    venue.play_to(index_at(JOIN_TS) + 1)
    asks = venue.book.asks(10)
    quantity = asks[0][1] + asks[1][1] + 3 * MILLI  # two full levels and part of a third
    assert asks[2][1] > 3 * MILLI
    expected = [asks[0], asks[1], (asks[2][0], 3 * MILLI)]

    order = venue.submit(side=Side.BUY, quantity=quantity)

    fills = venue.fills(order.client_order_id)
    assert [(f.price, f.quantity) for f in fills] == expected
    assert all(f.liquidity is Liquidity.TAKER for f in fills)
    vwap = Fraction(sum(f.price * f.quantity for f in fills), quantity)
    assert vwap == Fraction(sum(p * q for p, q in expected), quantity)
    assert vwap > asks[0][0]  # slippage from real depth
    notional = sum(p * q for p, q in expected) * BTC.notional_factor
    assert venue.exchange.cash == venue.initial_cash - notional - sum(f.fee for f in fills)
    assert sum(f.fee for f in fills) == sum(
        CommissionModel(BTC, rate="0.001").fee(p, q) for p, q in expected
    )
    assert venue.exchange.positions[BTC.symbol] == quantity


def test_liquidity_we_took_is_not_taken_again_before_the_book_restates_the_level() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    (best, size), (second, _) = venue.book.asks(2)
    venue.submit(side=Side.BUY, quantity=size)  # the whole best ask
    venue.submit(side=Side.BUY, quantity=MILLI)

    assert [f.price for f in venue.fills()] == [best, second]
    assert venue.book.best_ask() == (best, size)  # the replayed book never learns of us

    # Once a depth update restates that level, its new size is the truth again.
    while True:
        event = venue.step()
        if isinstance(event, BookDelta) and any(p == best for p, _ in event.asks):
            break
    assert venue.book.best_ask()[0] == best
    order = venue.submit(side=Side.BUY, quantity=LOT)
    assert [f.price for f in venue.fills(order.client_order_id)] == [best]


def expected_walk(levels: list[tuple[int, int]], quantity: int) -> list[tuple[int, int]]:
    legs = []
    for price, size in levels:
        take = min(size, quantity)
        legs.append((price, take))
        quantity -= take
        if not quantity:
            return legs
    raise AssertionError("not enough depth")


def test_market_sell_walks_the_bids_best_first() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    quantity = JOIN_AHEAD + 2 * MILLI
    venue.submit(side=Side.BUY, quantity=quantity)  # buy, then sell it all back
    expected = expected_walk(venue.book.bids(50), quantity)
    assert len(expected) > 2
    venue.submit(side=Side.SELL, quantity=quantity)
    sells = [f for f in venue.fills() if f.side is Side.SELL]
    assert [(f.price, f.quantity) for f in sells] == expected
    assert venue.exchange.positions[BTC.symbol] == 0


# -- fill-or-kill and post-only ------------------------------------------------------------
def test_fok_that_cannot_fill_in_full_is_rejected_without_any_fill() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    (ask, size), _ = venue.book.asks(2)
    order = venue.submit(
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        limit_price=ask,
        quantity=size + LOT,
        tif=TimeInForce.FOK,
    )
    assert [r.reason for r in venue.rejections()] == [RejectReason.FOK_CANNOT_FILL]
    assert venue.fills() == [] and venue.accepted() == []
    assert venue.exchange.cash == venue.initial_cash
    assert venue.exchange.order_outcome(order.client_order_id) == venue.rejections()[0]


def test_fok_that_can_fill_in_full_fills_at_once() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    (ask, size), _ = venue.book.asks(2)
    venue.submit(
        side=Side.BUY, order_type=OrderType.LIMIT, limit_price=ask, quantity=size, tif="fok"
    )
    assert [(f.price, f.quantity, f.leaves_quantity) for f in venue.fills()] == [(ask, size, 0)]


def test_post_only_that_would_cross_is_rejected_and_one_that_rests_is_a_maker() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    ask = venue.book.best_ask()[0]
    venue.submit(
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        limit_price=ask,
        quantity=MILLI,
        post_only=True,
    )
    assert [r.reason for r in venue.rejections()] == [RejectReason.POST_ONLY_WOULD_CROSS]
    assert venue.fills() == []

    resting = venue.submit(
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        limit_price=JOIN_PRICE,
        quantity=MILLI,
        post_only=True,
    )
    assert venue.exchange.open_orders() == [resting]


def test_ioc_limit_takes_what_it_can_and_expires_the_rest() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    (ask, size), _ = venue.book.asks(2)
    order = venue.submit(
        side=Side.BUY, order_type=OrderType.LIMIT, limit_price=ask, quantity=size + MILLI, tif="ioc"
    )
    assert [(f.quantity, f.leaves_quantity) for f in venue.fills()] == [(size, MILLI)]
    assert [c.reason for c in venue.cancels(order.client_order_id)] == ["expired"]
    state = venue.exchange.order_state(order.client_order_id)
    assert state is not None and (state.filled, state.leaves, state.canceled) == (size, 0, MILLI)


def test_maker_fill_pays_the_maker_rate_exactly() -> None:
    commission = CommissionModel(BTC, rate="0.001", maker_rate="-0.0001")
    venue = L2Harness(commission=commission)
    joined_best_bid(venue)
    while not venue.fills():
        venue.step()
    (fill,) = venue.fills()
    # -0.0001 x 61828.25 x 0.001 = -0.006182825 USDT, a rebate
    assert (
        fill.fee
        == usdt("-0.006182825")
        == commission.fee(JOIN_PRICE, MILLI, liquidity=Liquidity.MAKER)
    )
    assert venue.exchange.cash == venue.initial_cash - usdt("61.82825") + usdt("0.006182825")


# -- USD-M futures ------------------------------------------------------------------------
def test_the_usdm_capture_stays_in_sync_by_its_pu_chain_and_a_market_order_walks_it() -> None:
    usdm = Instrument(
        symbol="BTCUSDT",
        venue="BINANCE-USDM",
        quote_currency="USDT",
        price_precision=2,  # whatever the reader's decimals: this spec never sends a price
        size_precision=3,
    )
    path = shared_data_dir() / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
    events = list(read_binance_capture([path], symbol="BTCUSDT"))
    venue = L2Harness(events=events, instrument=usdm, commission=CommissionModel(usdm))
    venue.play(len(events) // 2)
    asks = venue.book.asks(20)
    quantity = asks[0][1] + 1
    venue.submit(side=Side.BUY, quantity=quantity)
    venue.play_to(len(events))

    assert [(f.price, f.quantity) for f in venue.fills()] == expected_walk(asks, quantity)
    assert venue.book.valid and venue.book.invalid_reason is None
