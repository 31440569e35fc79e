"""The PositionSizeManager: how big an order may be, computed exactly.

It sizes by risk (distance to the stop), clamps to quantity limits and to per-position and
total-exposure caps, and scales by recent win rate. Units: quantities at size precision,
prices at price precision, money = price * quantity * notional_factor in money units.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

import msgspec

__all__ = ["PositionSizeManager", "SizingLimits"]

FractionLike = Fraction | Decimal | str | int
"""An exact fraction, or something ``Fraction()`` reads exactly (``"0.01"``, ``"1/100"``)."""


class SizingLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Sizing limits; fractions are decimal strings, read exactly.

    Defaults (the seed's):

    - ``min_quantity = 0``: smaller orders are dropped (quantity 0), never rounded up.
    - ``max_quantity = None``: no absolute cap on one order.
    - ``max_position_fraction = "0.20"``: one position's notional at most 20% of equity.
    - ``max_total_exposure_fraction = "0.50"``: all positions' notional at most 50% of equity.
    - Dynamic sizing over the last ``lookback_trades = 20`` trades, once there are at least
      ``min_trades = 10``: a win rate strictly above ``high_win_rate = "0.60"`` multiplies
      size by ``high_multiplier = "1.5"``, strictly below ``low_win_rate = "0.40"`` by
      ``low_multiplier = "0.5"``, otherwise by 1. A win is a trade with ``pnl > 0``.
    """

    min_quantity: int = 0
    max_quantity: int | None = None
    max_position_fraction: str = "0.20"
    max_total_exposure_fraction: str = "0.50"
    lookback_trades: int = 20
    min_trades: int = 10
    high_win_rate: str = "0.60"
    high_multiplier: str = "1.5"
    low_win_rate: str = "0.40"
    low_multiplier: str = "0.5"

    def __post_init__(self) -> None:
        if self.min_quantity < 0:
            raise ValueError(f"SizingLimits.min_quantity must be >= 0, got {self.min_quantity}")
        if self.max_quantity is not None and self.max_quantity < self.min_quantity:
            raise ValueError(
                f"SizingLimits.max_quantity {self.max_quantity} is below "
                f"min_quantity {self.min_quantity}"
            )
        if self.lookback_trades < 1 or not 1 <= self.min_trades <= self.lookback_trades:
            raise ValueError(
                "SizingLimits needs 1 <= min_trades <= lookback_trades, got "
                f"min_trades={self.min_trades}, lookback_trades={self.lookback_trades}"
            )
        for field in (
            "max_position_fraction",
            "max_total_exposure_fraction",
            "high_multiplier",
            "low_multiplier",
        ):
            if _parse(field, getattr(self, field)) < 0:
                raise ValueError(f"SizingLimits.{field} must be >= 0, got {getattr(self, field)}")
        low = _parse("low_win_rate", self.low_win_rate)
        high = _parse("high_win_rate", self.high_win_rate)
        if not 0 <= low <= high <= 1:
            raise ValueError(
                "SizingLimits needs 0 <= low_win_rate <= high_win_rate <= 1, got "
                f"{self.low_win_rate} and {self.high_win_rate}"
            )


class PositionSizeManager:
    """Exact order sizing under :class:`SizingLimits`.

    >>> sizer = PositionSizeManager()
    >>> sizer.size_for_risk(100_000, "0.01", 10_000, 9_900, 1, 1)  # risk 1000 at 100/unit
    10
    >>> sizer.clamp(50, 10_000, 100_000, 0, 1, 1)  # 20% of 100_000 is 2 units at 10_000
    2
    """

    def __init__(self, limits: SizingLimits | None = None) -> None:
        self.limits = limits or SizingLimits()
        limits = self.limits
        self._position_cap = Fraction(limits.max_position_fraction)
        self._exposure_cap = Fraction(limits.max_total_exposure_fraction)
        self._high_win_rate = Fraction(limits.high_win_rate)
        self._low_win_rate = Fraction(limits.low_win_rate)
        self._high_multiplier = Fraction(limits.high_multiplier)
        self._low_multiplier = Fraction(limits.low_multiplier)

    def size_for_risk(
        self,
        equity: int,
        risk_fraction: FractionLike,
        entry_price: int,
        stop_price: int,
        notional_factor: int,
        size_increment: int,
    ) -> int:
        """The largest quantity whose loss at the stop stays within ``equity * risk_fraction``.

        That is ``|entry - stop| * quantity * notional_factor <= equity * risk_fraction``,
        floored to a multiple of ``size_increment``; 0 when equity is not positive. Raises
        ``ValueError`` when the stop equals the entry (the risk per unit would be zero).
        """
        _require_positive("notional_factor", notional_factor)
        _require_positive("size_increment", size_increment)
        fraction = Fraction(risk_fraction)
        if fraction < 0:
            raise ValueError(f"risk_fraction must be >= 0, got {risk_fraction!r}")
        risk_per_unit = abs(entry_price - stop_price) * notional_factor
        if risk_per_unit == 0:
            raise ValueError(
                f"stop price {stop_price} equals entry price {entry_price}: risk per unit is zero"
            )
        if equity <= 0:
            return 0
        return _floor_to(equity * fraction / risk_per_unit, size_increment)

    def clamp(
        self,
        quantity: int,
        price: int,
        equity: int,
        current_exposure: int,
        notional_factor: int,
        size_increment: int,
        *,
        position_exposure: int = 0,
    ) -> int:
        """``quantity`` reduced until every limit holds, floored to ``size_increment``.

        With ``notional = price * quantity * notional_factor`` (money units):

        - ``quantity <= max_quantity``;
        - ``position_exposure + notional <= equity * max_position_fraction``, where
          ``position_exposure`` is the notional already held in this instrument;
        - ``current_exposure + notional <= equity * max_total_exposure_fraction``, where
          ``current_exposure`` is the gross notional of all open positions (this one
          included);
        - a result below ``min_quantity`` becomes 0 (never rounded up past a cap).

        Returns 0 when equity is not positive or a cap is already used up.
        """
        _require_positive("price", price)
        _require_positive("notional_factor", notional_factor)
        _require_positive("size_increment", size_increment)
        if quantity < 0:
            raise ValueError(f"quantity must be >= 0 (the side carries direction), got {quantity}")
        if current_exposure < 0 or position_exposure < 0:
            raise ValueError(
                "exposures are gross notionals and must be >= 0, got "
                f"current_exposure={current_exposure}, position_exposure={position_exposure}"
            )
        if equity <= 0:
            return 0
        limits = self.limits
        unit_notional = price * notional_factor
        allowed = Fraction(quantity)
        if limits.max_quantity is not None:
            allowed = min(allowed, Fraction(limits.max_quantity))
        position_room = equity * self._position_cap - position_exposure
        exposure_room = equity * self._exposure_cap - current_exposure
        allowed = min(allowed, position_room / unit_notional, exposure_room / unit_notional)
        if allowed <= 0:
            return 0
        result = _floor_to(allowed, size_increment)
        return result if result >= limits.min_quantity else 0

    def multiplier(self, recent_pnls: Sequence[int]) -> Fraction:
        """The size multiplier for the win rate of the last ``lookback_trades`` trade pnls.

        1 until there are ``min_trades`` trades; see :class:`SizingLimits` for the tiers.
        """
        recent = list(recent_pnls)[-self.limits.lookback_trades :]
        if len(recent) < self.limits.min_trades:
            return Fraction(1)
        win_rate = self.win_rate(recent)
        if win_rate > self._high_win_rate:
            return self._high_multiplier
        if win_rate < self._low_win_rate:
            return self._low_multiplier
        return Fraction(1)

    @staticmethod
    def win_rate(pnls: Sequence[int]) -> Fraction:
        """Share of trades with ``pnl > 0`` (0 for no trades)."""
        if not pnls:
            return Fraction(0)
        return Fraction(sum(1 for pnl in pnls if pnl > 0), len(pnls))


def _floor_to(value: Fraction, increment: int) -> int:
    """The largest multiple of ``increment`` not above ``value`` (0 for negative values)."""
    if value <= 0:
        return 0
    return (value // increment) * increment


def _parse(field: str, value: str) -> Fraction:
    try:
        return Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise ValueError(f"SizingLimits.{field} must be a decimal string, got {value!r}") from exc


def _require_positive(field: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{field} must be positive, got {value}")
