"""PositionSizeManager: risk-based size, exact clamping to caps, win-rate multiplier.

Units as in the module: prices at price precision, quantities at size precision, money
(equity, exposure) = price * quantity * notional_factor. Properties check the caps exactly.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.risk.position_sizing import PositionSizeManager, SizingLimits


def test_default_limits_are_the_seed_limits() -> None:
    limits = SizingLimits()
    assert limits.min_quantity == 0
    assert limits.max_quantity is None
    assert Fraction(limits.max_position_fraction) == Fraction(1, 5)
    assert Fraction(limits.max_total_exposure_fraction) == Fraction(1, 2)
    assert limits.lookback_trades == 20
    assert limits.min_trades == 10
    assert Fraction(limits.high_win_rate) == Fraction(3, 5)
    assert Fraction(limits.high_multiplier) == Fraction(3, 2)
    assert Fraction(limits.low_win_rate) == Fraction(2, 5)
    assert Fraction(limits.low_multiplier) == Fraction(1, 2)


@pytest.mark.parametrize(
    "overrides",
    [
        {"min_quantity": -1},
        {"min_quantity": 10, "max_quantity": 5},
        {"max_position_fraction": "-0.1"},
        {"max_total_exposure_fraction": "half"},
        {"min_trades": 30},
        {"low_win_rate": "0.7"},
    ],
)
def test_limits_reject_nonsense(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="SizingLimits"):
        SizingLimits(**overrides)  # type: ignore[arg-type]


def test_limits_decode_from_a_config_mapping() -> None:
    limits = msgspec.convert({"max_position_fraction": "0.1", "max_quantity": 500}, SizingLimits)
    assert limits.max_quantity == 500
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"max_position_fraction": "lots"}, SizingLimits)


# -- size_for_risk ------------------------------------------------------------------------------
def test_size_for_risk_risks_the_fraction_of_equity_at_the_stop() -> None:
    sizer = PositionSizeManager()
    # Equity 1_000_000 money units, risk 1% = 10_000; stop 150 price units away, factor 2:
    # 300 money per size unit -> 33.3 -> floored to the increment of 5 -> 30.
    quantity = sizer.size_for_risk(1_000_000, "0.01", 20_000, 19_850, 2, 5)
    assert quantity == 30
    assert 150 * quantity * 2 <= 10_000 < 150 * (quantity + 5) * 2


def test_size_for_risk_works_for_shorts_and_exact_fractions() -> None:
    sizer = PositionSizeManager()
    assert sizer.size_for_risk(90_000, Fraction(1, 3), 100, 130, 1, 1) == 1_000
    assert sizer.size_for_risk(90_000, Decimal("0.005"), 100, 130, 1, 1) == 15


def test_size_for_risk_is_zero_without_equity() -> None:
    sizer = PositionSizeManager()
    assert sizer.size_for_risk(0, "0.01", 100, 90, 1, 1) == 0
    assert sizer.size_for_risk(-5_000, "0.01", 100, 90, 1, 1) == 0


def test_size_for_risk_refuses_a_stop_at_the_entry() -> None:
    with pytest.raises(ValueError, match="risk per unit is zero"):
        PositionSizeManager().size_for_risk(1_000, "0.01", 100, 100, 1, 1)


def test_size_for_risk_refuses_negative_risk() -> None:
    with pytest.raises(ValueError, match="risk_fraction"):
        PositionSizeManager().size_for_risk(1_000, "-0.01", 100, 90, 1, 1)


@settings(max_examples=300, deadline=None)
@given(
    equity=st.integers(0, 10**12),
    risk=st.fractions(0, 1, max_denominator=10_000),
    entry=st.integers(1, 10**7),
    stop=st.integers(1, 10**7),
    factor=st.integers(1, 1_000),
    increment=st.integers(1, 1_000),
)
def test_size_for_risk_is_the_largest_size_within_the_budget(
    equity: int, risk: Fraction, entry: int, stop: int, factor: int, increment: int
) -> None:
    if entry == stop:
        return
    quantity = PositionSizeManager().size_for_risk(equity, risk, entry, stop, factor, increment)
    per_unit = abs(entry - stop) * factor
    budget = equity * risk
    assert quantity >= 0
    assert quantity % increment == 0
    assert quantity * per_unit <= budget
    assert (quantity + increment) * per_unit > budget


# -- clamp ----------------------------------------------------------------------------------------
def test_clamp_caps_one_position_at_its_share_of_equity() -> None:
    sizer = PositionSizeManager()
    # 20% of 1_000_000 = 200_000 money; one unit costs 300 * 2 = 600 -> 333 -> 330.
    assert sizer.clamp(10_000, 300, 1_000_000, 0, 2, 10) == 330


def test_clamp_counts_what_the_position_already_holds() -> None:
    sizer = PositionSizeManager()
    assert sizer.clamp(10_000, 100, 1_000_000, 150_000, 1, 1, position_exposure=150_000) == 500


def test_clamp_caps_total_exposure() -> None:
    sizer = PositionSizeManager()
    # 50% of 1_000_000 = 500_000, 420_000 already out: room for 80_000 = 800 units at 100.
    assert sizer.clamp(10_000, 100, 1_000_000, 420_000, 1, 1) == 800
    assert sizer.clamp(10_000, 100, 1_000_000, 500_000, 1, 1) == 0
    assert sizer.clamp(10_000, 100, 1_000_000, 700_000, 1, 1) == 0


def test_clamp_applies_min_and_max_quantity() -> None:
    sizer = PositionSizeManager(SizingLimits(min_quantity=100, max_quantity=1_234))
    assert sizer.clamp(5_000, 1, 10**9, 0, 1, 10) == 1_230  # max, floored to the increment
    assert sizer.clamp(99, 1, 10**9, 0, 1, 1) == 0  # below the minimum: dropped, not raised
    assert sizer.clamp(150, 1, 10**9, 0, 1, 1) == 150
    # The caps leave room for 50 units only: below the minimum, so nothing.
    assert sizer.clamp(150, 1_000, 250_000, 0, 1, 1) == 0


def test_clamp_leaves_a_small_order_alone() -> None:
    assert PositionSizeManager().clamp(7, 100, 1_000_000, 0, 1, 1) == 7


def test_clamp_is_zero_without_equity() -> None:
    assert PositionSizeManager().clamp(7, 100, 0, 0, 1, 1) == 0
    assert PositionSizeManager().clamp(7, 100, -1, 0, 1, 1) == 0


@pytest.mark.parametrize(
    "args",
    [
        (-1, 100, 1_000, 0, 1, 1),  # negative quantity
        (1, 0, 1_000, 0, 1, 1),  # zero price
        (1, 100, 1_000, -1, 1, 1),  # negative exposure
        (1, 100, 1_000, 0, 0, 1),  # zero notional factor
        (1, 100, 1_000, 0, 1, 0),  # zero increment
    ],
)
def test_clamp_rejects_meaningless_inputs(args: tuple[int, int, int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        PositionSizeManager().clamp(*args)


fraction_strings = st.fractions(0, 2, max_denominator=1_000).map(
    lambda f: str(Decimal(f.numerator) / Decimal(f.denominator))
)


@settings(max_examples=500, deadline=None)
@given(
    quantity=st.integers(0, 10**9),
    price=st.integers(1, 10**8),
    equity=st.integers(-(10**6), 10**13),
    current_exposure=st.integers(0, 10**13),
    position_share=st.fractions(0, 1),
    factor=st.integers(1, 1_000),
    increment=st.integers(1, 10_000),
    min_quantity=st.integers(0, 10_000),
    max_extra=st.none() | st.integers(0, 10**9),
    position_fraction=fraction_strings,
    exposure_fraction=fraction_strings,
)
def test_clamp_never_breaks_a_cap(
    quantity: int,
    price: int,
    equity: int,
    current_exposure: int,
    position_share: Fraction,
    factor: int,
    increment: int,
    min_quantity: int,
    max_extra: int | None,
    position_fraction: str,
    exposure_fraction: str,
) -> None:
    max_quantity = None if max_extra is None else min_quantity + max_extra
    limits = SizingLimits(
        min_quantity=min_quantity,
        max_quantity=max_quantity,
        max_position_fraction=position_fraction,
        max_total_exposure_fraction=exposure_fraction,
    )
    position_exposure = int(current_exposure * position_share)
    result = PositionSizeManager(limits).clamp(
        quantity,
        price,
        equity,
        current_exposure,
        factor,
        increment,
        position_exposure=position_exposure,
    )
    notional = price * result * factor
    assert result >= 0
    assert result % increment == 0
    assert result <= quantity
    if result == 0:
        return
    assert result >= min_quantity
    assert max_quantity is None or result <= max_quantity
    assert position_exposure + notional <= equity * Fraction(position_fraction)
    assert current_exposure + notional <= equity * Fraction(exposure_fraction)


# -- multiplier -----------------------------------------------------------------------------------
def pnls(wins: int, losses: int) -> list[int]:
    return [100] * wins + [-100] * losses


def test_multiplier_is_one_with_fewer_than_ten_trades() -> None:
    sizer = PositionSizeManager()
    assert sizer.multiplier([]) == 1
    assert sizer.multiplier(pnls(9, 0)) == 1
    assert sizer.multiplier(pnls(0, 9)) == 1


def test_multiplier_rewards_a_win_rate_above_sixty_percent() -> None:
    sizer = PositionSizeManager()
    assert sizer.multiplier(pnls(7, 3)) == Fraction(3, 2)
    assert sizer.multiplier(pnls(6, 4)) == 1  # exactly 60%: not above


def test_multiplier_halves_below_forty_percent() -> None:
    sizer = PositionSizeManager()
    assert sizer.multiplier(pnls(3, 7)) == Fraction(1, 2)
    assert sizer.multiplier(pnls(4, 6)) == 1  # exactly 40%: not below


def test_multiplier_counts_flat_trades_as_non_wins() -> None:
    assert PositionSizeManager().multiplier([100] * 5 + [0] * 5 + [-1] * 2) == 1  # 5/12
    assert PositionSizeManager().multiplier([100] * 3 + [0] * 7) == Fraction(1, 2)


def test_multiplier_looks_only_at_the_last_twenty_trades() -> None:
    sizer = PositionSizeManager()
    history = pnls(0, 30) + pnls(13, 7)  # the 30 early losses are out of the window
    assert sizer.multiplier(history) == Fraction(3, 2)
    assert sizer.multiplier(tuple(history)) == Fraction(3, 2)


def test_multiplier_tiers_are_configurable() -> None:
    sizer = PositionSizeManager(
        SizingLimits(lookback_trades=4, min_trades=4, high_win_rate="0.5", high_multiplier="2")
    )
    assert sizer.multiplier(pnls(3, 1)) == 2
    assert PositionSizeManager.win_rate(pnls(3, 1)) == Fraction(3, 4)
