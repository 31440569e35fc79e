"""Specs for L2 order types, time in force, amend, cancel, reduce-only, the dead-man's
switch and every rejection reason, on the real Binance BTCUSDT spot capture.

From the join point used below (23:55:18.67 receive time) the price falls: no trade
above 61828.26 and down to 61781.68 within 30 s, so sell stops under the market trigger.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from test_l2_exchange import JOIN_PRICE, JOIN_TS, LOT, MILLI, expected_walk, index_at
from test_l2_harness import BTC, TICK, L2Harness, px, qty, usdt

from predator.market.l2 import BookDelta, TradeTick
from predator.venue import (
    L2Rules,
    Liquidity,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueAmendRejected,
    VenueOrderAmended,
)

SECOND = 1_000_000_000
LIMIT = OrderType.LIMIT


def at_join(**options: Any) -> L2Harness:
    venue = L2Harness(**options)
    venue.play_to(index_at(JOIN_TS) + 1)
    return venue


def first_trade(venue: L2Harness, hit: Any) -> TradeTick:
    return next(e for e in venue.remaining() if isinstance(e, TradeTick) and hit(e))


# -- stops --------------------------------------------------------------------------------
def test_sell_stop_becomes_a_market_order_at_the_first_trade_through_its_stop() -> None:
    venue = at_join()
    stop = px("61800")
    order = venue.submit(side=Side.SELL, order_type=OrderType.STOP, stop_price=stop, quantity=MILLI)
    trigger = first_trade(venue, lambda t: t.price <= stop)
    venue.play_until(trigger.ts - 1)
    assert venue.fills() == []
    assert venue.exchange.order_state(order.client_order_id).status is OrderStatus.WAITING_TRIGGER
    expected = expected_walk(venue.book.bids(20), MILLI)  # the book the trigger meets

    venue.play_until(trigger.ts)

    fills = venue.fills(order.client_order_id)
    assert [(f.price, f.quantity) for f in fills] == expected
    assert all(f.ts == trigger.ts and f.liquidity is Liquidity.TAKER for f in fills)


def test_sell_stop_limit_becomes_a_limit_order_when_its_stop_trades() -> None:
    venue = at_join()
    stop = px("61800")
    taking, resting = (
        venue.submit(
            side=Side.SELL,
            order_type=OrderType.STOP_LIMIT,
            stop_price=stop,
            limit_price=limit,
            quantity=MILLI,
        )
        for limit in (stop - 10 * TICK, stop + 500 * TICK)
    )
    trigger = first_trade(venue, lambda t: t.price <= stop)
    venue.play_until(trigger.ts - 1)
    assert venue.fills() == []
    bids = venue.book.bids(5)
    asks = venue.book.asks(5)

    venue.play_until(trigger.ts)

    # under the bids: takes them like a marketable limit, never below its limit
    expected = expected_walk([(p, q) for p, q in bids if p >= stop - 10 * TICK], MILLI)
    fills = venue.fills(taking.client_order_id)
    assert [(f.price, f.quantity, f.ts) for f in fills] == [(p, q, trigger.ts) for p, q in expected]
    # above the asks: rests at its limit, where nothing is displayed ahead of it
    assert asks[0][0] < stop + 500 * TICK
    state = venue.exchange.order_state(resting.client_order_id)
    assert (state.status, state.limit_price, state.queue_ahead) == (
        OrderStatus.RESTING,
        stop + 500 * TICK,
        0,
    )
    assert venue.fills(resting.client_order_id) == []


def test_stop_already_through_at_arrival_triggers_at_once() -> None:
    venue = at_join()
    order = venue.submit(
        side=Side.BUY, order_type=OrderType.STOP, stop_price=px("61000"), quantity=LOT
    )
    (fill,) = venue.fills(order.client_order_id)
    assert fill.price == venue.book.best_ask()[0]


# -- time in force ------------------------------------------------------------------------
def test_gtd_order_expires_at_its_expiry_time() -> None:
    venue = at_join()
    expire_at = JOIN_TS + 3 * SECOND
    order = venue.submit(
        side=Side.BUY,
        order_type=LIMIT,
        limit_price=px("61000"),
        quantity=MILLI,
        tif=TimeInForce.GTD,
        expire_at=expire_at,
    )
    venue.play_until(expire_at - 1)
    assert venue.cancels() == []
    venue.play_until(expire_at + SECOND)
    (cancel,) = venue.cancels(order.client_order_id)
    assert (cancel.reason, cancel.ts) == ("expired", expire_at)
    assert venue.exchange.open_orders() == []


def test_market_order_takes_the_book_and_is_done() -> None:
    venue = at_join()
    order = venue.submit(side=Side.BUY, quantity=MILLI)
    (fill,) = venue.fills(order.client_order_id)
    assert (fill.quantity, fill.leaves_quantity) == (MILLI, 0)
    assert venue.exchange.order_outcome(order.client_order_id) == fill


# -- cancel and amend ---------------------------------------------------------------------
def test_cancel_removes_a_resting_order_once() -> None:
    venue = at_join()
    order = venue.submit(side=Side.BUY, order_type=LIMIT, limit_price=JOIN_PRICE, quantity=MILLI)
    assert venue.exchange.cancel(order.client_order_id) is True
    assert venue.exchange.cancel(order.client_order_id) is False
    assert [c.reason for c in venue.cancels()] == ["canceled"]
    venue.play(3000)
    assert venue.fills() == []


def _resting_at_join(venue: L2Harness, quantity: int = 3 * MILLI) -> str:
    order = venue.submit(side=Side.BUY, order_type=LIMIT, limit_price=JOIN_PRICE, quantity=quantity)
    # let sell-initiated trades move us up the queue
    while venue.exchange.order_state(order.client_order_id).queue_ahead > qty("0.1"):
        venue.step()
    return order.client_order_id


def test_amend_down_keeps_the_queue_place() -> None:
    venue = at_join()
    client_order_id = _resting_at_join(venue)
    ahead = venue.exchange.order_state(client_order_id).queue_ahead

    assert venue.exchange.amend(client_order_id, quantity=MILLI)

    (amended,) = venue.of_type(VenueOrderAmended)
    assert (amended.quantity, amended.leaves_quantity, amended.kept_priority) == (
        MILLI,
        MILLI,
        True,
    )
    state = venue.exchange.order_state(client_order_id)
    assert (state.quantity, state.queue_ahead) == (MILLI, ahead)


def test_amend_up_goes_to_the_back_of_the_queue() -> None:
    venue = at_join()
    client_order_id = _resting_at_join(venue)
    displayed = venue.book.size_at("buy", JOIN_PRICE)

    venue.exchange.amend(client_order_id, quantity=5 * MILLI)

    (amended,) = venue.of_type(VenueOrderAmended)
    assert amended.kept_priority is False
    assert venue.exchange.order_state(client_order_id).queue_ahead == displayed


def test_amend_to_a_new_price_loses_priority_and_may_take() -> None:
    venue = at_join()
    client_order_id = _resting_at_join(venue, MILLI)
    ask = venue.book.best_ask()[0]

    venue.exchange.amend(client_order_id, limit_price=ask)

    (amended,) = venue.of_type(VenueOrderAmended)
    assert (amended.limit_price, amended.kept_priority) == (ask, False)
    (fill,) = venue.fills(client_order_id)
    assert (fill.price, fill.liquidity) == (ask, Liquidity.TAKER)


def test_amend_of_an_unknown_order_or_below_the_filled_quantity_is_refused() -> None:
    venue = at_join()
    venue.exchange.amend("nope", quantity=MILLI)
    order = venue.submit(
        side=Side.BUY, order_type=LIMIT, limit_price=JOIN_PRICE - 1000 * TICK, quantity=MILLI
    )
    venue.exchange.amend(order.client_order_id, quantity=0)
    venue.exchange.amend(order.client_order_id, limit_price=JOIN_PRICE - 999 * TICK)  # fine
    reasons = [r.reason for r in venue.of_type(VenueAmendRejected)]
    assert reasons == [RejectReason.UNKNOWN_ORDER, RejectReason.INVALID_SIZE]
    assert venue.exchange.open_orders()[0].limit_price == JOIN_PRICE - 999 * TICK


# -- reduce-only --------------------------------------------------------------------------
def test_reduce_only_sell_is_capped_at_the_position_and_the_rest_cancelled() -> None:
    venue = at_join()
    venue.submit(side=Side.BUY, quantity=2 * MILLI)
    order = venue.submit(side=Side.SELL, quantity=5 * MILLI, reduce_only=True)
    assert sum(f.quantity for f in venue.fills(order.client_order_id)) == 2 * MILLI
    assert [c.reason for c in venue.cancels(order.client_order_id)] == ["reduce_only"]
    assert venue.exchange.positions[BTC.symbol] == 0
    state = venue.exchange.order_state(order.client_order_id)
    assert (state.filled, state.leaves, state.canceled) == (2 * MILLI, 0, 3 * MILLI)


def test_resting_reduce_only_order_is_cancelled_when_the_position_is_gone() -> None:
    venue = at_join()
    venue.submit(side=Side.BUY, quantity=MILLI)
    resting = venue.submit(
        side=Side.SELL, order_type=LIMIT, limit_price=px("63000"), quantity=MILLI, reduce_only=True
    )
    venue.submit(side=Side.SELL, quantity=MILLI)  # closes the position by other means
    assert [c.reason for c in venue.cancels(resting.client_order_id)] == ["reduce_only"]


# -- dead-man's switch --------------------------------------------------------------------
def test_dead_mans_switch_cancels_every_order_of_a_silent_account() -> None:
    venue = at_join()
    venue.exchange.heartbeat("main", timeout_ns=2 * SECOND)
    orders = [
        venue.submit(
            side=Side.BUY, order_type=LIMIT, limit_price=JOIN_PRICE - k * 100 * TICK, quantity=LOT
        )
        for k in range(1, 4)
    ]
    venue.play_until(JOIN_TS + 2 * SECOND - 1)
    assert venue.cancels() == []
    venue.play_until(JOIN_TS + 3 * SECOND)
    cancels = venue.cancels()
    assert [c.client_order_id for c in cancels] == [o.client_order_id for o in orders]
    assert {(c.reason, c.ts) for c in cancels} == {("dead_mans_switch", JOIN_TS + 2 * SECOND)}


def test_heartbeats_keep_the_orders_alive() -> None:
    venue = at_join()
    venue.exchange.heartbeat("main", timeout_ns=2 * SECOND)
    venue.submit(side=Side.BUY, order_type=LIMIT, limit_price=px("61000"), quantity=LOT)
    for k in range(1, 10):
        venue.play_until(JOIN_TS + k * SECOND)
        venue.exchange.heartbeat("main")
    assert venue.cancels() == [] and len(venue.exchange.open_orders()) == 1


# -- rejections ---------------------------------------------------------------------------
DIME_TICK = msgspec.structs.replace(BTC, price_increment=10 * TICK)
BUY_AT_BID = {"side": Side.BUY, "order_type": LIMIT, "limit_price": JOIN_PRICE - 4 * TICK}


@pytest.mark.parametrize(
    ("options", "fields", "reason"),
    [
        pytest.param(
            {"cash": "100"},
            {**BUY_AT_BID, "quantity": 10 * MILLI},  # 618 USDT with 100 USDT
            RejectReason.INSUFFICIENT_MARGIN,
            id="insufficient-margin",
        ),
        pytest.param(
            {"rules": L2Rules(min_quantity=10 * LOT)},
            {**BUY_AT_BID, "quantity": 5 * LOT},
            RejectReason.BELOW_MIN_QUANTITY,
            id="min-quantity",
        ),
        pytest.param(
            {"rules": L2Rules(min_notional=usdt(5))},
            {**BUY_AT_BID, "quantity": 5 * LOT},  # 0.00005 BTC ~ 3.09 USDT
            RejectReason.BELOW_MIN_NOTIONAL,
            id="min-notional",
        ),
        pytest.param(
            {"instrument": DIME_TICK},
            {**BUY_AT_BID, "quantity": MILLI},  # 61828.21 is not on a 0.10 USDT tick
            RejectReason.OFF_TICK_SIZE,
            id="off-tick",
        ),
        pytest.param(
            {"rules": L2Rules(price_band_bps=500)},
            {**BUY_AT_BID, "limit_price": px("58000"), "quantity": MILLI},  # 6.2% under the mid
            RejectReason.OUTSIDE_PRICE_BAND,
            id="price-band",
        ),
        pytest.param(
            {},
            {**BUY_AT_BID, "limit_price": px("61828.26"), "quantity": MILLI, "post_only": True},
            RejectReason.POST_ONLY_WOULD_CROSS,
            id="post-only",
        ),
        pytest.param(
            {},
            {"side": Side.SELL, "quantity": MILLI, "reduce_only": True},
            RejectReason.REDUCE_ONLY_WOULD_INCREASE,
            id="reduce-only",
        ),
        pytest.param(
            {},
            {**BUY_AT_BID, "quantity": MILLI, "symbol": "ETHUSDT"},
            RejectReason.UNKNOWN_INSTRUMENT,
            id="unknown-instrument",
        ),
        pytest.param(
            {},
            {**BUY_AT_BID, "quantity": MILLI + 1},
            RejectReason.INVALID_SIZE,
            id="not-a-lot",
        ),
        pytest.param(
            {},
            {"side": Side.BUY, "order_type": LIMIT, "quantity": MILLI},
            RejectReason.INVALID_PRICE,
            id="no-limit",
        ),
        pytest.param(
            {},
            {**BUY_AT_BID, "quantity": MILLI, "tif": TimeInForce.GTD, "expire_at": JOIN_TS},
            RejectReason.INVALID_EXPIRY,
            id="gtd-in-the-past",
        ),
        pytest.param(
            {},
            {"side": Side.SELL, "close_position": True},
            RejectReason.NO_POSITION,
            id="close-without-position",
        ),
    ],
)
def test_invalid_request_is_rejected_with_its_reason_and_never_rests(
    options: dict[str, Any], fields: dict[str, Any], reason: RejectReason
) -> None:
    venue = at_join(**options)
    order = venue.submit(**fields)

    (rejection,) = venue.rejections()
    assert (rejection.client_order_id, rejection.reason) == (order.client_order_id, reason)
    assert rejection.detail
    assert venue.accepted() == [] and venue.exchange.open_orders() == []
    venue.play(2000)
    assert venue.fills() == [] and venue.exchange.cash == venue.initial_cash


def test_the_rejection_table_base_order_is_valid() -> None:
    venue = at_join(rules=L2Rules(min_quantity=10 * LOT, min_notional=usdt(5), price_band_bps=500))
    venue.submit(**BUY_AT_BID, quantity=MILLI)
    assert venue.rejections() == [] and len(venue.accepted()) == 1


def test_rate_limit_rejects_requests_beyond_the_window_and_frees_up_after_it() -> None:
    venue = at_join(rules=L2Rules(max_requests=3, rate_window_ns=SECOND))
    for _ in range(4):
        venue.submit(**BUY_AT_BID, quantity=LOT)
    assert [r.reason for r in venue.rejections()] == [RejectReason.RATE_LIMIT_EXCEEDED]
    assert len(venue.accepted()) == 3
    venue.play_until(JOIN_TS + SECOND)
    venue.submit(**BUY_AT_BID, quantity=LOT)
    assert len(venue.accepted()) == 4


def test_halted_venue_rejects_every_order() -> None:
    venue = at_join()
    venue.exchange.halted = True
    venue.submit(**BUY_AT_BID, quantity=MILLI)
    assert [r.reason for r in venue.rejections()] == [RejectReason.VENUE_HALTED]


def test_no_book_yet_means_no_market_data() -> None:
    venue = L2Harness()
    venue.play(3)  # deltas and quotes before the depth snapshot
    venue.submit(side=Side.BUY, quantity=MILLI)
    assert [r.reason for r in venue.rejections()] == [RejectReason.NO_MARKET_DATA]


def test_a_gap_in_the_depth_updates_invalidates_the_book_until_the_next_snapshot() -> None:
    events = list(L2Harness().events)
    join = index_at(JOIN_TS)
    gap = next(i for i in range(join + 1, len(events)) if isinstance(events[i], BookDelta))
    del events[gap]  # lose one real delta
    following = next(i for i in range(gap, len(events)) if isinstance(events[i], BookDelta))
    venue = L2Harness(events=events)
    venue.play_to(following)
    assert venue.book.valid
    venue.step()  # the delta after the lost one does not continue the book
    assert not venue.book.valid
    resting_before = venue.exchange.open_orders()
    venue.submit(**BUY_AT_BID, quantity=MILLI)
    (rejection,) = venue.rejections()
    assert rejection.reason is RejectReason.NO_MARKET_DATA and "gap" in rejection.detail
    assert resting_before == []


def test_duplicate_client_order_id_is_rejected_and_the_first_order_stands() -> None:
    venue = at_join()
    venue.submit(client_order_id="dup", **BUY_AT_BID, quantity=MILLI)
    venue.submit(client_order_id="dup", **BUY_AT_BID, quantity=2 * MILLI)
    assert [r.reason for r in venue.rejections("dup")] == [RejectReason.DUPLICATE_ORDER_ID]
    assert venue.exchange.open_orders()[0].quantity == MILLI
