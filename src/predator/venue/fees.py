"""Commission models: percent of notional, fixed per order and per unit, exact.

A model may charge makers a different rate than takers (``maker_rate``; negative is a
rebate), as the L2 paper exchange distinguishes the two; bar mode charges ``rate``.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from predator.market.instrument import Instrument
from predator.venue.orders import Liquidity

__all__ = ["CommissionModel"]


def _round_half_even(value: Fraction) -> int:
    return round(value)  # Fraction.__round__ rounds half to even


class CommissionModel:
    """Fees charged by the venue on each fill, in the instrument's money unit.

    ``rate`` is a fraction of notional (0.002 = 0.2%; negative = maker rebate),
    ``fixed`` a cash amount per order (charged on its first fill), ``per_unit`` a cash
    amount per whole unit traded. Amounts are exact; a fee that falls between two money
    units (only possible with more decimals than the money scale) is rounded half-even.
    ``maker_rate`` (default: ``rate``) replaces ``rate`` on fills that added liquidity,
    when the caller says so with ``liquidity=Liquidity.MAKER``.

    >>> from predator.market.instrument import Instrument
    >>> model = CommissionModel(Instrument(symbol="X"), rate="0.001", maker_rate="-0.0001")
    >>> model.fee(10000, 1), model.fee(10000, 1, liquidity=Liquidity.MAKER)
    (10000000, -1000000)
    """

    def __init__(
        self,
        instrument: Instrument,
        *,
        rate: Decimal | str | int = 0,
        fixed: Decimal | str | int = 0,
        per_unit: Decimal | str | int = 0,
        maker_rate: Decimal | str | int | None = None,
    ) -> None:
        self.rate = Fraction(Decimal(rate))
        if not -Fraction(1, 10) <= self.rate < Fraction(1, 10):
            raise ValueError(f"commission rate must be within [-0.1, 0.1), got {rate}")
        self.maker_rate = self.rate if maker_rate is None else Fraction(Decimal(maker_rate))
        if not -Fraction(1, 10) <= self.maker_rate < Fraction(1, 10):
            raise ValueError(f"maker rate must be within [-0.1, 0.1), got {maker_rate}")
        self.fixed_decimal = Decimal(fixed)
        self.per_unit_decimal = Decimal(per_unit)
        if self.fixed_decimal < 0 or self.per_unit_decimal < 0:
            raise ValueError("fixed and per-unit commissions must be >= 0")
        self._money_scale = 10**instrument.money_precision
        self._size_scale = 10**instrument.size_precision
        self._notional_factor = instrument.notional_factor
        self.fixed = _round_half_even(Fraction(self.fixed_decimal) * self._money_scale)
        # per unit of the size scale, in money units (may be fractional: keep a Fraction)
        self._per_size_unit = Fraction(self.per_unit_decimal) * self._money_scale / self._size_scale
        self.is_zero = not (self.rate or self.maker_rate or self.fixed or self._per_size_unit)

    def fee(
        self,
        price: int,
        quantity: int,
        *,
        first_fill: bool = True,
        liquidity: Liquidity | None = None,
    ) -> int:
        """Fee in money units for a fill of ``quantity`` (> 0) at ``price``.

        ``liquidity=Liquidity.MAKER`` charges ``maker_rate``; anything else ``rate``.
        """
        if self.is_zero:
            return 0
        notional = price * quantity * self._notional_factor
        rate = self.maker_rate if liquidity is Liquidity.MAKER else self.rate
        fee = rate * notional + self._per_size_unit * quantity
        if first_fill:
            fee += self.fixed
        return _round_half_even(fee) if fee.denominator != 1 else fee.numerator

    def unit_cost(self, price: int) -> Fraction | int:
        """Money per size unit bought at ``price``, fees included (for sizing)."""
        if self.is_zero:
            return price * self._notional_factor
        cost: Fraction = price * self._notional_factor * (1 + self.rate) + self._per_size_unit
        return cost
