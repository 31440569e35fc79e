"""Specs for run statistics: the equity curve, maximum drawdown and the performance summary."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predator.portfolio import ClosedTrade, EquityCurve, max_drawdown, performance


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([], Fraction(0), id="empty"),
        pytest.param([100], Fraction(0), id="one-point"),
        pytest.param([100, 110, 120, 130], Fraction(0), id="only-up"),
        pytest.param([100, 100, 100], Fraction(0), id="flat"),
        pytest.param([100, 50], Fraction(1, 2), id="straight-down"),
        pytest.param([100, 120, 90, 130, 65, 200], Fraction(1, 2), id="later-deeper-fall"),
        pytest.param([100, 120, 60, 130, 110], Fraction(1, 2), id="earlier-deeper-fall"),
        pytest.param([100, 80, 100, 80], Fraction(1, 5), id="repeated-equal-falls"),
        pytest.param([200, 150, 400, 300], Fraction(1, 4), id="same-ratio-bigger-drop"),
        pytest.param([100, -50], Fraction(3, 2), id="below-zero"),
        pytest.param([0, -10, -20], Fraction(0), id="never-a-positive-peak"),
    ],
)
def test_max_drawdown_is_the_largest_fall_from_a_peak_as_a_fraction_of_it(
    values: list[int], expected: Fraction
) -> None:
    assert max_drawdown(values) == expected


def brute_force_drawdown(values: list[int]) -> Fraction:
    worst = Fraction(0)
    for j, value in enumerate(values):
        peak = max(values[: j + 1])
        if peak > 0:
            worst = max(worst, Fraction(peak - value, peak))
    return worst


@given(st.lists(st.integers(-(10**12), 10**15), max_size=60))
def test_max_drawdown_matches_the_worst_fall_over_all_peak_trough_pairs(values: list[int]) -> None:
    assert max_drawdown(values) == brute_force_drawdown(values)


def test_equity_curve_counts_exposed_bars_and_restates_the_last_point() -> None:
    curve = EquityCurve()
    curve.restate_last(5)  # nothing to restate yet
    for equity, exposed in [(100, False), (105, True), (103, True), (104, False)]:
        curve.record(equity, exposed)
    curve.restate_last(101)

    assert curve.values == [100, 105, 103, 101]
    assert curve.exposed_bars == 2


def trade(pnl: int) -> ClosedTrade:
    return ClosedTrade(
        symbol="GOOG",
        size=1,
        entry_ts=0,
        exit_ts=1,
        entry_price=10000,
        exit_price=10000,
        gross_pnl=pnl,
        fees=0,
        pnl=pnl,
    )


def test_performance_reports_exact_percentages_and_money() -> None:
    # Money at 2 decimals: 10,000.00 -> peak 12,000.00 -> 9,000.00 -> 12,500.00.
    curve = EquityCurve()
    for equity, exposed in [
        (1_000_000, False),
        (1_200_000, True),
        (900_000, True),
        (1_250_000, False),
    ]:
        curve.record(equity, exposed)

    result = performance(
        curve=curve,
        initial=1_000_000,
        trades=[trade(300_000), trade(-50_000), trade(0)],
        fees=1_234,
        realized_pnl=250_000,
        money_precision=2,
        buy_hold=Fraction(1, 8),
    )

    assert result.initial_equity == Decimal("10000.00")
    assert result.final_equity == Decimal("12500.00")
    assert result.return_pct == Decimal(25)
    assert result.buy_hold_pct == Decimal("12.5")
    assert result.trades == 3
    assert result.win_rate_pct == Decimal(100) / 3  # a zero-PnL trade is not a win
    assert result.max_drawdown_pct == Decimal(-25)  # 12,000 -> 9,000, reported negative
    assert result.exposure_pct == Decimal(50)
    assert result.fees == Decimal("12.34")
    assert result.realized_pnl == Decimal("2500.00")


def test_performance_without_trades_or_bars_has_no_win_rate_and_zero_return() -> None:
    result = performance(
        curve=EquityCurve(),
        initial=500,
        trades=[],
        fees=0,
        realized_pnl=0,
        money_precision=2,
        buy_hold=Fraction(0),
    )

    assert result.final_equity == result.initial_equity == Decimal("5.00")
    assert result.return_pct == 0
    assert result.win_rate_pct is None
    assert (result.max_drawdown_pct, result.exposure_pct) == (0, 0)


def test_performance_of_a_losing_run_has_a_negative_return() -> None:
    curve = EquityCurve()
    curve.record(800, True)
    result = performance(
        curve=curve,
        initial=1_000,
        trades=[trade(-200)],
        fees=0,
        realized_pnl=-200,
        money_precision=0,
        buy_hold=Fraction(-1, 3),
    )

    assert result.return_pct == Decimal(-20)
    assert result.win_rate_pct == 0
    assert result.buy_hold_pct == Decimal(-100) / 3
