"""Specs for exact fixed-point numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predator.core.numbers import (
    NotRepresentable,
    decimals_of,
    from_decimal,
    parse_fixed,
    rescale,
    to_decimal,
)


@pytest.mark.parametrize(
    ("text", "scale", "units"),
    [
        ("180.36", 2, 18036),
        ("180.36", 4, 1803600),
        ("-12.340", 2, -1234),
        ("+0.5", 1, 5),
        (".5", 1, 5),
        ("7.", 0, 7),
        ("  42  ", 0, 42),
        ("0.00000001", 8, 1),
        ("1e-8", 8, 1),
        ("123456789012345678901234567890.123456789", 9, 123456789012345678901234567890123456789),
    ],
)
def test_parse_fixed_is_exact(text: str, scale: int, units: int) -> None:
    assert parse_fixed(text, scale) == units


def test_parse_fixed_refuses_digits_beyond_the_scale() -> None:
    with pytest.raises(NotRepresentable) as info:
        parse_fixed("180.365", 2)
    assert info.value.value == "180.365"
    assert info.value.scale == 2


def test_parse_fixed_ignores_trailing_zeros_beyond_the_scale() -> None:
    assert parse_fixed("180.3600000", 2) == 18036


@pytest.mark.parametrize("text", ["", ".", "-", "1.2.3", "abc", "1.x", "nan", "inf"])
def test_parse_fixed_refuses_non_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fixed(text, 2)


def test_not_representable_is_a_value_error() -> None:
    assert issubclass(NotRepresentable, ValueError)


def test_to_decimal_is_the_exact_inverse() -> None:
    assert to_decimal(18036, 2) == Decimal("180.36")
    assert to_decimal(-1, 8) == Decimal("-0.00000001")


def test_rescale_to_a_finer_scale_never_loses_digits() -> None:
    assert rescale(18036, 2, 8) == 18036000000
    assert rescale(-5, 0, 3) == -5000


def test_rescale_to_a_coarser_scale_must_divide_exactly() -> None:
    assert rescale(18036000000, 8, 2) == 18036
    with pytest.raises(NotRepresentable):
        rescale(18036, 2, 1)
    with pytest.raises(NotRepresentable):
        rescale(-18031, 2, 1)


def test_from_decimal_exact_refuses_to_round() -> None:
    assert from_decimal(Decimal("1.25"), 2) == 125
    assert from_decimal(3, 2) == 300
    with pytest.raises(NotRepresentable):
        from_decimal("1.255", 2)


@pytest.mark.parametrize(
    ("value", "rounding", "units"),
    [
        ("1.255", "floor", 125),
        ("1.255", "ceiling", 126),
        ("1.255", "half_even", 126),
        ("1.245", "half_even", 124),
        ("-1.255", "floor", -126),
        ("-1.255", "ceiling", -125),
        ("-1.245", "half_even", -124),
    ],
)
def test_from_decimal_rounds_only_when_asked(value: str, rounding: str, units: int) -> None:
    assert from_decimal(value, 2, rounding=rounding) == units


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "junk"])
def test_from_decimal_refuses_non_finite_values(value: str) -> None:
    with pytest.raises(NotRepresentable):
        from_decimal(value, 2)


def test_decimals_of_counts_significant_decimals() -> None:
    assert decimals_of("1.50") == 1
    assert decimals_of("100") == 0
    assert decimals_of("0.00012") == 5


@st.composite
def plain_decimals(draw: st.DrawFn) -> tuple[str, int]:
    """A plain decimal literal and a scale large enough to hold it exactly."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = draw(st.text("0123456789", max_size=24))
    frac = draw(st.text("0123456789", max_size=20))
    if not whole and not frac:
        whole = "0"
    dot = "." if frac or draw(st.booleans()) else ""
    trailing_zeros = draw(st.integers(min_value=0, max_value=3))
    scale = len(frac.rstrip("0")) + draw(st.integers(min_value=0, max_value=4))
    return f"{sign}{whole}{dot}{frac}{'0' * trailing_zeros if dot else ''}", scale


@given(plain_decimals())
def test_parse_fixed_round_trips_through_decimal(case: tuple[str, int]) -> None:
    text, scale = case
    assert to_decimal(parse_fixed(text, scale), scale) == Decimal(text)


@given(
    st.decimals(
        min_value=Decimal("-1e21"),
        max_value=Decimal("1e21"),
        allow_nan=False,
        allow_infinity=False,
        places=6,
    )
)
def test_parse_fixed_agrees_with_from_decimal(value: Decimal) -> None:
    text = format(value, "f")
    assert parse_fixed(text, 6) == from_decimal(value, 6)


@given(st.integers(), st.integers(min_value=0, max_value=12), st.integers(0, 12))
def test_rescale_round_trips(units: int, scale: int, extra: int) -> None:
    assert rescale(rescale(units, scale, scale + extra), scale + extra, scale) == units


# Decimal's default context keeps 28 significant digits; numbers.py must not round to it
# (18-decimal crypto amounts above ~10**10 units would lose their last digits silently).


def test_from_decimal_is_exact_beyond_28_significant_digits() -> None:
    assert from_decimal("12345678901.123456789012345678", 18) == (12345678901123456789012345678)


def test_from_decimal_exact_refuses_a_29th_digit_it_cannot_hold() -> None:
    with pytest.raises(NotRepresentable):
        from_decimal("10000000000000000000000.0000001", 6)


def test_to_decimal_is_exact_beyond_28_significant_digits() -> None:
    assert to_decimal(10**30 + 1, 2) == Decimal("10000000000000000000000000000.01")
