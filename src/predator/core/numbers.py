"""Exact numbers for prices, quantities and money.

Every amount is a plain ``int`` counted in units of ``10**-scale`` (fixed point), so
arithmetic is exact and fast; ``Decimal`` is used only at the edges (parsing, display).
The ``NewType`` aliases let mypy tell a price from a quantity at zero run-time cost.
"""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Decimal,
    InvalidOperation,
    localcontext,
)
from fractions import Fraction
from functools import lru_cache
from typing import NewType

__all__ = [
    "Money",
    "NotRepresentable",
    "Price",
    "Quantity",
    "decimals_of",
    "format_seconds",
    "format_units",
    "from_decimal",
    "parse_fixed",
    "parse_fraction",
    "rescale",
    "to_decimal",
]

Price = NewType("Price", int)
"""A price in units of ``10**-price_precision`` of the quote currency."""

Quantity = NewType("Quantity", int)
"""A quantity in units of ``10**-size_precision`` of the instrument."""

Money = NewType("Money", int)
"""An amount of a currency in units of ``10**-money_precision``."""


class NotRepresentable(ValueError):
    """A value has more decimals than the fixed-point scale can hold exactly."""

    def __init__(self, value: object, scale: int) -> None:
        super().__init__(f"{value!r} is not representable with {scale} decimals")
        self.value = value
        self.scale = scale


_ROUNDING = {
    "exact": None,
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
    "half_even": ROUND_HALF_EVEN,
}


def from_decimal(value: Decimal | int | str, scale: int, rounding: str = "exact") -> int:
    """Convert ``value`` to an integer count of ``10**-scale`` units.

    ``rounding="exact"`` (the default) raises :class:`NotRepresentable` rather than
    silently losing a digit; ``floor``, ``ceiling`` and ``half_even`` round explicitly.

    >>> from_decimal("180.36", 2)
    18036
    """
    if type(value) is int and scale >= 0:  # the common case, exact without Decimal
        return value * int(10**scale)
    try:
        d = Decimal(value)
    except InvalidOperation as exc:
        raise NotRepresentable(value, scale) from exc
    if not d.is_finite():
        raise NotRepresentable(value, scale)
    mode = _ROUNDING[rounding]
    # Enough precision that scaling never rounds: all digits plus the scale shift.
    with localcontext() as ctx:
        ctx.prec = max(28, len(d.as_tuple().digits) + abs(scale) + 2)
        scaled = d.scaleb(scale)
        if mode is None:
            if scaled != scaled.to_integral_value():
                raise NotRepresentable(value, scale)
            return int(scaled)
        return int(scaled.to_integral_value(rounding=mode))


def to_decimal(units: int, scale: int) -> Decimal:
    """The exact ``Decimal`` value of ``units`` at ``scale`` (``18036, 2 -> 180.36``)."""
    with localcontext() as ctx:
        ctx.prec = max(28, len(str(abs(units))) + abs(scale) + 2)
        return Decimal(units).scaleb(-scale)


def rescale(units: int, from_scale: int, to_scale: int) -> int:
    """Move an exact amount to a finer scale (never loses digits; coarser must divide)."""
    if to_scale >= from_scale:
        return units * int(10 ** (to_scale - from_scale))
    factor = int(10 ** (from_scale - to_scale))
    q, r = divmod(units, factor)
    if r:
        raise NotRepresentable(to_decimal(units, from_scale), to_scale)
    return q


def parse_fixed(text: str, scale: int) -> int:
    """Parse a plain decimal literal (``"-12.340"``) into ``10**-scale`` units, exactly.

    Faster than going through ``Decimal`` for the common CSV case; raises ``ValueError``
    for anything that is not a plain decimal number and :class:`NotRepresentable` when
    it has more significant decimals than ``scale``.
    """
    s = text.strip()
    negative = s.startswith("-")
    if negative or s.startswith("+"):
        s = s[1:]
    whole, dot, frac = s.partition(".")
    if ("e" in s or "E" in s) or not (whole.isdigit() or (dot and whole == "")):
        return from_decimal(text, scale)
    if frac and not frac.isdigit():
        raise ValueError(text)
    if not whole and not frac:
        raise ValueError(text)
    frac = frac.rstrip("0")
    if len(frac) > scale:
        raise NotRepresentable(text, scale)
    unit = int(10**scale)
    value = int(whole or "0") * unit + (int(frac) * int(10 ** (scale - len(frac))) if frac else 0)
    return -value if negative else value


@lru_cache(maxsize=256)
def parse_fraction(text: str) -> Fraction:
    """An exact ``Fraction`` from a decimal string, cached (sizes and fractions recur)."""
    return Fraction(text)


def format_units(units: int, scale: int | None) -> str:
    """``units`` at ``scale`` as a plain decimal (``-32725000000, 8 -> "-327.25"``);
    the raw integer when the scale is unknown. For messages, never for arithmetic."""
    if scale is None:
        return str(units)
    return f"{to_decimal(units, scale).normalize():f}"


def format_seconds(ns: int) -> str:
    """``300s`` (or ``0.5s``) for a nanosecond duration, for messages."""
    if ns % 1_000_000_000 == 0:
        return f"{ns // 1_000_000_000}s"
    return f"{Decimal(ns) / 1_000_000_000}s"


def decimals_of(text: str) -> int:
    """Number of significant decimals in a plain decimal literal (``"1.50" -> 1``)."""
    _, _, frac = text.strip().partition(".")
    return len(frac.rstrip("0"))
