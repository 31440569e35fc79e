"""Specs for the PaperExchange in bar mode, driven by real GOOG daily bars.

Prices are ints at 0.01 USD (10101 = $101.01), money at 10**-8 USD. Expected amounts
are worked out by hand in Decimal and converted once with ``money``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from itertools import pairwise
from math import floor

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predator.testkit.builders import VenueHarness, goog_bars, goog_feed, money
from predator.venue import (
    BarFillModel,
    CommissionModel,
    FillMode,
    Liquidity,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)

BARS = goog_bars()
GOOG = goog_feed().instrument
# The first GOOG bars (2004-08-19 ..), as (open, high, low, close):
B0, B1, B2, B3, B4, B5, B6, B7 = BARS[:8]
assert (B0.open, B0.high, B0.low, B0.close) == (10000, 10406, 9596, 10034)
assert (B1.open, B1.high, B1.low, B1.close) == (10101, 10908, 10050, 10831)
assert (B2.open, B2.high, B2.low, B2.close) == (11075, 11348, 10905, 10940)  # gaps over B1
assert (B3.open, B3.high, B3.low, B3.close) == (11124, 11160, 10357, 10487)
assert (B7.open, B7.low) == (10528, 10201) and B7.open < B6.low  # gaps under B6


def usd(amount: str | int | Decimal) -> int:
    return money(amount, GOOG)


def cents_to_decimal(price: int) -> Decimal:
    return Decimal(price).scaleb(-2)


# -- market orders ------------------------------------------------------------------------
def test_market_order_fills_at_the_next_bars_open_by_default() -> None:
    venue = VenueHarness()
    venue.play(B0)
    order = venue.submit(side=Side.BUY, quantity=10)
    assert [r.client_order_id for r in venue.accepted()] == [order.client_order_id]
    assert venue.fills() == []  # nothing fills on the bar the order was sent on

    venue.play(B1)

    (fill,) = venue.fills()
    assert (fill.price, fill.quantity, fill.leaves_quantity) == (B1.open, 10, 0)
    assert fill.ts == B1.ts
    assert fill.liquidity is Liquidity.TAKER
    assert venue.exchange.open_orders() == []


def test_market_order_in_close_mode_fills_at_the_close_of_the_bar_it_was_sent_on() -> None:
    venue = VenueHarness(fill_model=BarFillModel(FillMode.CLOSE))
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10)

    (fill,) = venue.fills()
    assert (fill.price, fill.quantity, fill.ts) == (B0.close, 10, B0.ts)
    venue.play(B1)
    assert len(venue.fills()) == 1


def test_every_market_order_fills_at_the_following_open_across_the_goog_history() -> None:
    venue = VenueHarness(cash="1000")
    expected_cash = venue.initial_cash
    for bar, following in pairwise(BARS):
        venue.play(bar)
        side = Side.SELL if venue.position else Side.BUY
        venue.submit(side=side, quantity=1)
        venue.play(following)
        fill = venue.fills()[-1]
        assert (fill.price, fill.side, fill.ts) == (following.open, side, following.ts)
        expected_cash -= side * following.open * GOOG.notional_factor
        assert venue.exchange.cash == expected_cash
    assert len(venue.fills()) == len(BARS) - 1


# -- limit orders -------------------------------------------------------------------------
def test_limit_buy_fills_at_its_limit_when_the_low_reaches_it() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.BUY, order_type=OrderType.LIMIT, quantity=5, limit_price=10100)
    venue.play(B1)  # open 101.01 above the limit, low 100.50 below it

    (fill,) = venue.fills()
    assert (fill.price, fill.liquidity) == (10100, Liquidity.MAKER)


def test_limit_buy_fills_at_the_open_when_the_bar_opens_below_the_limit() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.BUY, order_type=OrderType.LIMIT, quantity=5, limit_price=10400)
    venue.play(B1)

    assert [f.price for f in venue.fills()] == [B1.open]


def test_limit_buy_rests_until_a_bar_low_reaches_it() -> None:
    venue = VenueHarness()
    venue.play(B0, B1)
    order = venue.submit(side=Side.BUY, order_type=OrderType.LIMIT, quantity=5, limit_price=10400)
    venue.play(B2)  # low 109.05: not reached
    assert venue.fills() == []
    assert venue.exchange.open_orders() == [order]

    venue.play(B3)  # low 103.57

    (fill,) = venue.fills()
    assert (fill.price, fill.ts) == (10400, B3.ts)
    assert venue.exchange.open_orders() == []


def test_limit_sell_fills_at_the_better_of_open_and_limit_when_the_high_reaches_it() -> None:
    venue = VenueHarness()
    venue.play(B0, B1)
    venue.submit(side=Side.SELL, order_type=OrderType.LIMIT, quantity=5, limit_price=11000)
    venue.play(B2)  # opens at 110.75, above the limit

    (fill,) = venue.fills()
    assert (fill.price, fill.liquidity) == (B2.open, Liquidity.MAKER)


def test_ioc_limit_buys_fill_only_when_their_bar_reaches_them_across_the_goog_history() -> None:
    venue = VenueHarness(cash="100000000")
    filled = expired = 0
    for bar, following in pairwise(BARS):
        venue.play(bar)
        limit = bar.close * 99 // 100  # 1% under the close
        order = venue.submit(
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=1,
            limit_price=limit,
            tif=TimeInForce.IOC,
        )
        venue.play(following)
        fills = venue.fills(order.client_order_id)
        if following.low <= limit:
            assert [f.price for f in fills] == [min(following.open, limit)]
            assert fills[0].price <= limit
            filled += 1
        else:
            assert fills == []
            assert [c.reason for c in venue.cancels(order.client_order_id)] == ["expired"]
            expired += 1
        assert venue.exchange.open_orders() == []
    assert filled > 100 and expired > 100  # the real data exercises both branches


# -- stop and stop-limit orders -----------------------------------------------------------
def test_stop_buy_fills_at_its_stop_when_the_high_crosses_it() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.BUY, order_type=OrderType.STOP, quantity=5, stop_price=10500)
    venue.play(B1)

    (fill,) = venue.fills()
    assert (fill.price, fill.liquidity) == (10500, Liquidity.TAKER)


def test_stop_buy_gapped_through_fills_at_the_open() -> None:
    venue = VenueHarness()
    venue.play(B0, B1)
    venue.submit(side=Side.BUY, order_type=OrderType.STOP, quantity=5, stop_price=11000)
    venue.play(B2)  # opens at 110.75, above the stop

    assert [f.price for f in venue.fills()] == [B2.open]


def test_stop_buy_rests_while_every_high_stays_under_the_stop() -> None:
    venue = VenueHarness()
    venue.play(B0)
    order = venue.submit(side=Side.BUY, order_type=OrderType.STOP, quantity=5, stop_price=11400)
    venue.play(BARS[1:6])  # highs 109.08, 113.48, 111.60, 108.00, 107.95

    assert venue.fills() == []
    assert venue.exchange.open_orders() == [order]


def test_stop_sell_fills_at_its_stop_when_the_low_crosses_it() -> None:
    venue = VenueHarness()
    venue.play(B0, B1, B2)
    venue.submit(side=Side.SELL, order_type=OrderType.STOP, quantity=5, stop_price=10500)
    venue.play(B3)  # opens 111.24, low 103.57

    assert [f.price for f in venue.fills()] == [10500]


def test_stop_sell_gapped_through_fills_at_the_open() -> None:
    venue = VenueHarness()
    venue.play(BARS[:7])
    venue.submit(side=Side.SELL, order_type=OrderType.STOP, quantity=5, stop_price=10550)
    venue.play(B7)  # opens 105.28, under the stop

    assert [f.price for f in venue.fills()] == [B7.open]


def test_stop_limit_buy_fills_at_the_stop_when_its_limit_is_above_the_stop() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        quantity=5,
        stop_price=10500,
        limit_price=10600,
    )
    venue.play(B1)

    (fill,) = venue.fills()
    assert (fill.price, fill.ts) == (10500, B1.ts)


def test_stop_limit_buy_waits_a_bar_when_its_limit_is_below_the_triggered_stop() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        quantity=5,
        stop_price=10500,
        limit_price=10400,
    )
    venue.play(B1)  # stop hit; low 100.50 would reach the limit, but intrabar order is unknown
    venue.play(B2)  # now a plain limit: low 109.05 does not reach it
    assert venue.fills() == []

    venue.play(B3)  # low 103.57

    (fill,) = venue.fills()
    assert (fill.price, fill.ts, fill.liquidity) == (10400, B3.ts, Liquidity.MAKER)


def test_stop_limit_buy_gapped_over_its_limit_waits_and_then_fills_as_a_limit() -> None:
    venue = VenueHarness()
    venue.play(B0, B1)
    venue.submit(
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        quantity=5,
        stop_price=11000,
        limit_price=11050,
    )
    venue.play(B2)  # opens 110.75: stop triggered above the limit
    assert venue.fills() == []

    venue.play(B3)
    assert [f.price for f in venue.fills()] == [11050]


def test_ioc_stop_limit_triggered_but_waiting_expires() -> None:
    venue = VenueHarness()
    venue.play(B0)
    order = venue.submit(
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        quantity=5,
        stop_price=10500,
        limit_price=10400,
        tif=TimeInForce.IOC,
    )
    venue.play(B1)

    assert [c.reason for c in venue.cancels(order.client_order_id)] == ["expired"]
    venue.play(B2, B3)
    assert venue.fills() == []


# -- time in force ------------------------------------------------------------------------
def test_ioc_limit_is_canceled_as_expired_when_its_bar_does_not_reach_it() -> None:
    venue = VenueHarness()
    venue.play(B0)
    order = venue.submit(
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=5,
        limit_price=10000,
        tif=TimeInForce.IOC,
    )
    venue.play(B1)  # low 100.50

    (cancel,) = venue.cancels()
    assert (cancel.client_order_id, cancel.reason, cancel.ts) == (
        order.client_order_id,
        "expired",
        B1.ts,
    )
    assert venue.exchange.open_orders() == []
    venue.play(BARS[2:12])  # later bars reach 100.00 but the order is gone
    assert min(bar.low for bar in BARS[2:12]) <= 10000
    assert venue.fills() == []


def test_gtc_limit_survives_bars_that_do_not_reach_it() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.BUY, order_type=OrderType.LIMIT, quantity=5, limit_price=10000)
    venue.play(BARS[1:12])

    assert venue.cancels() == []
    first_reaching = next(bar for bar in BARS[1:12] if bar.low <= 10000)
    assert [(f.price, f.ts) for f in venue.fills()] == [
        (min(first_reaching.open, 10000), first_reaching.ts)
    ]


def test_cancel_removes_a_resting_order_and_reports_it_once() -> None:
    venue = VenueHarness()
    venue.play(B0)
    order = venue.submit(side=Side.BUY, order_type=OrderType.LIMIT, quantity=5, limit_price=9000)

    assert venue.exchange.cancel(order.client_order_id) is True
    assert venue.exchange.cancel(order.client_order_id) is False
    assert [c.reason for c in venue.cancels()] == ["canceled"]
    venue.play(BARS[1:30])
    assert venue.fills() == []


# -- commissions --------------------------------------------------------------------------
def _bought_10_at_b1(commission: CommissionModel) -> int:
    venue = VenueHarness(commission=commission)
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10)
    venue.play(B1)
    (fill,) = venue.fills()
    assert fill.price == 10101
    notional = usd(Decimal("101.01") * 10)
    assert venue.exchange.cash == venue.initial_cash - notional - fill.fee
    return fill.fee


def test_percent_commission_is_that_fraction_of_notional() -> None:
    fee = _bought_10_at_b1(CommissionModel(GOOG, rate="0.002"))
    assert fee == usd(Decimal("101.01") * 10 * Decimal("0.002")) == usd("2.0202")


def test_fixed_commission_is_charged_once_per_order_whatever_its_size() -> None:
    fee = _bought_10_at_b1(CommissionModel(GOOG, fixed="1.5"))
    assert fee == usd("1.5")


def test_per_unit_commission_is_charged_on_every_unit() -> None:
    fee = _bought_10_at_b1(CommissionModel(GOOG, per_unit="0.005"))
    assert fee == usd("0.05")


def test_combined_commissions_add_up_exactly() -> None:
    fee = _bought_10_at_b1(CommissionModel(GOOG, rate="0.001", fixed="1", per_unit="0.01"))
    expected = Decimal("101.01") * 10 * Decimal("0.001") + 1 + 10 * Decimal("0.01")
    assert fee == usd(expected) == usd("2.1101")


def test_fee_finer_than_the_money_unit_rounds_half_to_even() -> None:
    # 0.000000005 USD per unit is half a money unit (1e-8 USD).
    commission = CommissionModel(GOOG, per_unit="0.000000005")
    assert [commission.fee(10101, quantity) for quantity in (1, 2, 3, 5)] == [0, 1, 2, 2]


# -- spread and slippage ------------------------------------------------------------------
SPREAD = BarFillModel(spread_bps=10, slippage_bps=2)  # taker pays 5 + 2 = 7 bps


def _taker_price(price: int, side: Side, tick: Decimal = Decimal("0.01")) -> int:
    raw = cents_to_decimal(price) * (1 + side * Decimal("0.0007"))
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    return int((raw / tick).quantize(Decimal(1), rounding=rounding) * tick * 100)


def test_market_buy_pays_half_spread_plus_slippage_rounded_up_to_the_tick() -> None:
    venue = VenueHarness(fill_model=SPREAD)
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10)
    venue.play(B1)

    assert [f.price for f in venue.fills()] == [_taker_price(10101, Side.BUY)] == [10109]


def test_market_sell_receives_half_spread_plus_slippage_less_rounded_down_to_the_tick() -> None:
    venue = VenueHarness(fill_model=SPREAD)
    venue.play(B0)
    venue.submit(side=Side.SELL, quantity=10)
    venue.play(B1)

    assert [f.price for f in venue.fills()] == [_taker_price(10101, Side.SELL)] == [10093]


def test_taker_price_rounds_to_a_coarse_tick_against_the_taker() -> None:
    nickel = msgspec.structs.replace(GOOG, price_increment=5)
    venue = VenueHarness(instrument=nickel, fill_model=SPREAD)
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=1)
    venue.submit(side=Side.SELL, quantity=1)
    venue.play(B1)

    buy, sell = venue.fills()
    assert (buy.price, sell.price) == (10110, 10090)
    assert (buy.price, sell.price) == (
        _taker_price(10101, Side.BUY, Decimal("0.05")),
        _taker_price(10101, Side.SELL, Decimal("0.05")),
    )


def test_stop_fill_is_a_taker_fill_and_pays_spread_and_slippage() -> None:
    venue = VenueHarness(fill_model=SPREAD)
    venue.play(B0)
    venue.submit(side=Side.BUY, order_type=OrderType.STOP, quantity=5, stop_price=10500)
    venue.play(B1)

    assert [f.price for f in venue.fills()] == [_taker_price(10500, Side.BUY)] == [10508]


def test_limit_fill_is_a_maker_fill_at_its_price_without_spread_or_slippage() -> None:
    venue = VenueHarness(fill_model=SPREAD)
    venue.play(B0)
    venue.submit(side=Side.BUY, order_type=OrderType.LIMIT, quantity=5, limit_price=10100)
    venue.play(B1)

    (fill,) = venue.fills()
    assert (fill.price, fill.liquidity) == (10100, Liquidity.MAKER)


def test_stop_limit_never_fills_beyond_its_limit_even_with_spread_and_slippage() -> None:
    venue = VenueHarness(fill_model=SPREAD)
    venue.play(B0)
    venue.submit(
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        quantity=5,
        stop_price=10500,
        limit_price=10500,
    )
    venue.play(B1, B2, B3)

    assert all(fill.price <= 10500 for fill in venue.fills())  # filled at 105.08 today


# -- rejections ---------------------------------------------------------------------------
# A coarse instrument (size in lots of 10, tick of 0.05) so increments can be violated.
COARSE = msgspec.structs.replace(GOOG, size_increment=10, price_increment=5)
LIMIT = OrderType.LIMIT


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({}, RejectReason.INVALID_SIZE, id="no-size"),
        pytest.param({"quantity": -10}, RejectReason.INVALID_SIZE, id="negative-quantity"),
        pytest.param({"quantity": 15}, RejectReason.INVALID_SIZE, id="not-a-size-increment"),
        pytest.param(
            {"quantity": 10, "equity_fraction": "0.5"}, RejectReason.INVALID_SIZE, id="qty+frac"
        ),
        pytest.param(
            {"quantity": 10, "close_position": True}, RejectReason.INVALID_SIZE, id="qty+close"
        ),
        pytest.param({"equity_fraction": "0"}, RejectReason.INVALID_SIZE, id="fraction-0"),
        pytest.param({"equity_fraction": "1.5"}, RejectReason.INVALID_SIZE, id="fraction>1"),
        pytest.param({"equity_fraction": "half"}, RejectReason.INVALID_SIZE, id="fraction-text"),
        pytest.param(
            {"quantity": 10, "order_type": LIMIT}, RejectReason.INVALID_PRICE, id="no-limit"
        ),
        pytest.param(
            {"quantity": 10, "order_type": LIMIT, "limit_price": 10101},
            RejectReason.INVALID_PRICE,
            id="limit-off-tick",
        ),
        pytest.param(
            {"quantity": 10, "order_type": LIMIT, "limit_price": 0},
            RejectReason.INVALID_PRICE,
            id="limit-zero",
        ),
        pytest.param(
            {"quantity": 10, "order_type": OrderType.STOP}, RejectReason.INVALID_PRICE, id="no-stop"
        ),
        pytest.param(
            {"quantity": 10, "order_type": OrderType.STOP_LIMIT, "stop_price": 10500},
            RejectReason.INVALID_PRICE,
            id="stop-limit-without-limit",
        ),
        pytest.param(
            {"quantity": 10, "symbol": "AAPL"}, RejectReason.UNKNOWN_INSTRUMENT, id="unknown"
        ),
    ],
)
def test_invalid_request_is_rejected_with_its_reason_and_never_rests(
    fields: dict[str, object], reason: RejectReason
) -> None:
    venue = VenueHarness(instrument=COARSE)
    venue.play(B0)
    order = venue.submit(side=Side.BUY, **fields)

    (rejection,) = venue.rejections()
    assert (rejection.client_order_id, rejection.reason) == (order.client_order_id, reason)
    assert rejection.detail
    assert venue.accepted() == []
    venue.play(BARS[1:10])
    assert venue.fills() == [] and venue.cancels() == []
    assert venue.exchange.cash == venue.initial_cash


def test_a_valid_request_on_the_coarse_instrument_is_accepted() -> None:
    # Guards the rejection table above: its base order is valid.
    venue = VenueHarness(instrument=COARSE)
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10, order_type=LIMIT, limit_price=10100)
    assert venue.rejections() == [] and len(venue.accepted()) == 1


def test_duplicate_client_order_id_is_rejected_and_the_first_order_stands() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(client_order_id="dup", side=Side.BUY, quantity=10)
    venue.submit(client_order_id="dup", side=Side.BUY, quantity=20)
    venue.play(B1)

    assert [r.reason for r in venue.rejections("dup")] == [RejectReason.DUPLICATE_ORDER_ID]
    assert [f.quantity for f in venue.fills("dup")] == [10]


def test_halted_venue_rejects_every_order() -> None:
    venue = VenueHarness()
    venue.exchange.halted = True
    venue.submit(side=Side.BUY, quantity=1)
    assert [r.reason for r in venue.rejections()] == [RejectReason.VENUE_HALTED]


def test_nan_equity_fraction_is_rejected_as_invalid_size() -> None:
    venue = VenueHarness()
    venue.submit(side=Side.BUY, equity_fraction="NaN")
    assert [r.reason for r in venue.rejections()] == [RejectReason.INVALID_SIZE]


# -- margin -------------------------------------------------------------------------------
def test_fraction_order_that_buys_less_than_one_unit_is_canceled_for_insufficient_margin() -> None:
    venue = VenueHarness(cash="50")
    venue.play(B0)
    venue.submit(side=Side.BUY, equity_fraction="1")
    venue.play(B1)  # one share costs 101.01

    assert [c.reason for c in venue.cancels()] == ["insufficient_margin"]
    assert venue.fills() == []
    assert (venue.exchange.cash, venue.position) == (venue.initial_cash, 0)


@pytest.mark.parametrize(
    ("side", "quantity", "fills"),
    [
        (Side.BUY, 99, True),  # 99 x 101.01 = 9,999.99 <= 10,000
        (Side.BUY, 100, False),  # 10,101.00 > 10,000
        (Side.SELL, 99, True),  # a short needs the same margin at leverage 1
        (Side.SELL, 100, False),
    ],
)
def test_unit_order_must_fit_the_cash_at_its_fill_price(
    side: Side, quantity: int, fills: bool
) -> None:
    venue = VenueHarness(cash="10000")
    venue.play(B0)
    venue.submit(side=side, quantity=quantity)
    venue.play(B1)

    assert bool(venue.fills()) is fills
    assert [c.reason for c in venue.cancels()] == ([] if fills else ["insufficient_margin"])
    assert venue.position == (side * quantity if fills else 0)


def test_margin_check_counts_the_commission() -> None:
    # 99 x 101.01 x 1.002 = 10,019.99 > 10,000, although 99 x 101.01 alone fits.
    venue = VenueHarness(cash="10000", commission=CommissionModel(GOOG, rate="0.002"))
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=99)
    venue.play(B1)
    assert [c.reason for c in venue.cancels()] == ["insufficient_margin"]


def test_short_beyond_margin_is_canceled_while_a_long_is_held() -> None:
    venue = VenueHarness(cash="10000")
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=90)
    venue.play(B1)  # long 90 at 101.01; cash left 909.10
    venue.submit(side=Side.SELL, quantity=190)  # close 90, then open 100 short
    venue.play(B2)

    assert [c.reason for c in venue.cancels()] == ["insufficient_margin"]
    assert venue.position == 90


# -- equity-fraction sizing ---------------------------------------------------------------
def test_full_equity_fraction_buys_the_whole_units_cash_affords_including_fees() -> None:
    venue = VenueHarness(cash="10000", commission=CommissionModel(GOOG, rate="0.002"))
    venue.play(B0)
    venue.submit(side=Side.BUY, equity_fraction="1")
    venue.play(B1)

    units = floor(Decimal(10000) / (Decimal("101.01") * Decimal("1.002")))
    assert units == 98
    assert [f.quantity for f in venue.fills()] == [units]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(BARS) - 2),
    cash=st.integers(100, 1_000_000),
    fraction=st.decimals("0.01", "1", places=2),
    rate=st.decimals("0", "0.01", places=4),
)
def test_equity_fraction_sizing_is_the_floor_of_budget_over_unit_cost(
    index: int, cash: int, fraction: Decimal, rate: Decimal
) -> None:
    venue = VenueHarness(cash=cash, commission=CommissionModel(GOOG, rate=rate))
    bar, following = BARS[index], BARS[index + 1]
    venue.play(bar)
    venue.submit(side=Side.BUY, equity_fraction=str(fraction))
    venue.play(following)

    price = cents_to_decimal(following.open)
    units = floor(Fraction(cash * fraction) / Fraction(price * (1 + rate)))
    if units == 0:
        assert [c.reason for c in venue.cancels()] == ["insufficient_margin"]
    else:
        (fill,) = venue.fills()
        assert fill.quantity == units
        assert venue.exchange.cash >= 0


# -- closing and reducing -----------------------------------------------------------------
def test_close_position_without_a_position_is_canceled_no_position() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.SELL, close_position=True)
    venue.play(B1)

    assert [c.reason for c in venue.cancels()] == ["no_position"]
    assert venue.fills() == []


def test_close_position_on_the_same_side_as_the_position_is_canceled_no_position() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10)
    venue.play(B1)
    venue.submit(side=Side.BUY, close_position=True)
    venue.play(B2)

    assert [c.reason for c in venue.cancels()] == ["no_position"]
    assert venue.position == 10


def test_close_position_sells_the_whole_position_at_fill_time() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10)
    venue.submit(side=Side.BUY, quantity=7)
    venue.play(B1)
    closing = venue.submit(side=Side.SELL, close_position=True)
    venue.play(B2)

    assert [(f.quantity, f.price) for f in venue.fills(closing.client_order_id)] == [(17, 11075)]
    assert venue.position == 0


def test_reduce_only_quantity_is_capped_at_the_position() -> None:
    venue = VenueHarness()
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10)
    venue.play(B1)
    reducing = venue.submit(side=Side.SELL, quantity=25, reduce_only=True)
    venue.play(B2)

    assert [f.quantity for f in venue.fills(reducing.client_order_id)] == [10]
    assert venue.position == 0


def test_reduce_only_order_sized_by_fraction_is_rejected_never_filled_at_zero() -> None:
    venue = VenueHarness(commission=CommissionModel(GOOG, fixed="1"))
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=10)
    venue.play(B1)
    cash_after_buy = venue.exchange.cash
    venue.submit(side=Side.SELL, equity_fraction="0.5", reduce_only=True)
    venue.play(B2)

    assert [r.reason for r in venue.rejections()] == [RejectReason.INVALID_SIZE]
    assert all(fill.quantity > 0 for fill in venue.fills())
    assert venue.exchange.cash == cash_after_buy  # no zero-quantity fill, no fixed fee


# -- the venue account --------------------------------------------------------------------
def test_venue_account_moves_exactly_per_fill_over_a_round_trip() -> None:
    commission = CommissionModel(GOOG, rate="0.001", fixed="0.5")
    venue = VenueHarness(cash="10000", commission=commission)
    venue.play(B0)
    venue.submit(side=Side.BUY, quantity=40)
    venue.play(B1)  # buy 40 at 101.01
    assert venue.position == 40
    buy_fee = Decimal("101.01") * 40 * Decimal("0.001") + Decimal("0.5")
    assert venue.exchange.cash == usd(10000 - Decimal("101.01") * 40 - buy_fee)
    # valued at the last close the venue saw
    assert venue.exchange.equity() == venue.exchange.cash + usd(40 * Decimal("108.31"))

    venue.submit(side=Side.SELL, quantity=40)
    venue.play(B2)  # sell 40 at 110.75
    sell_fee = Decimal("110.75") * 40 * Decimal("0.001") + Decimal("0.5")
    expected = 10000 + (Decimal("110.75") - Decimal("101.01")) * 40 - buy_fee - sell_fee
    assert venue.position == 0
    assert venue.exchange.cash == venue.exchange.equity() == usd(expected)
    assert [f.fee for f in venue.fills()] == [usd(buy_fee), usd(sell_fee)]


def test_a_short_sale_credits_the_proceeds_and_owes_the_shares() -> None:
    venue = VenueHarness(cash="10000")
    venue.play(B0)
    venue.submit(side=Side.SELL, quantity=30)
    venue.play(B1)

    assert venue.position == -30
    assert venue.exchange.cash == usd(10000 + 30 * Decimal("101.01"))
    assert venue.exchange.equity() == usd(10000 + 30 * (Decimal("101.01") - Decimal("108.31")))


def test_reports_carry_unique_venue_order_and_trade_ids() -> None:
    venue = VenueHarness(cash="100000")
    venue.play(B0)
    for _ in range(5):
        venue.submit(side=Side.BUY, quantity=1)
    venue.play(B1)

    assert len({a.venue_order_id for a in venue.accepted()}) == 5
    assert len({f.trade_id for f in venue.fills()}) == 5


# -- end of data --------------------------------------------------------------------------
def test_finalize_fills_an_order_sent_on_the_last_bar_at_that_bars_open() -> None:
    before_last, last = BARS[-2], BARS[-1]
    venue = VenueHarness()
    venue.play(before_last)
    venue.submit(side=Side.BUY, quantity=5)
    venue.play(last)
    closing = venue.submit(side=Side.SELL, close_position=True)
    assert venue.fills(closing.client_order_id) == []

    venue.exchange.finalize()

    assert [(f.price, f.quantity) for f in venue.fills(closing.client_order_id)] == [(last.open, 5)]
    assert venue.position == 0
    assert venue.exchange.open_orders() == []


def test_finalize_does_not_fill_a_stop_limit_that_was_left_waiting_on_the_last_bar() -> None:
    before_last, last = BARS[-2], BARS[-1]
    venue = VenueHarness()
    venue.play(before_last)
    venue.submit(
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        quantity=1,
        stop_price=last.open + 100,  # 798.80, under the high of 807.14
        limit_price=last.low + 50,  # 796.65, reachable but below the stop
    )
    venue.play(last)
    assert venue.fills() == []  # waits: intrabar order unknown

    venue.exchange.finalize()

    assert venue.fills() == []
