"""Performance statistics of a run: equity curve, drawdown, returns, win rate.

The equity curve is exact (money units per bar); percentages are computed exactly
as fractions and only turned into ``Decimal`` for reporting.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

import msgspec

from predator.portfolio.position import ClosedTrade

__all__ = ["EquityCurve", "Performance", "max_drawdown", "performance"]


class EquityCurve:
    """Equity after each bar (money units) and whether a position was open."""

    __slots__ = ("exposed_bars", "last_exposed", "values")

    def __init__(self) -> None:
        self.values: list[int] = []
        self.exposed_bars = 0
        self.last_exposed = False

    def record(self, equity: int, exposed: bool) -> None:
        self.values.append(equity)
        self.last_exposed = exposed
        if exposed:
            self.exposed_bars += 1

    def restate_last(self, equity: int, exposed: bool | None = None) -> None:
        """Replace the last point (positions closed at the end of the run, on that bar)."""
        if self.values:
            self.values[-1] = equity
            if exposed is not None and exposed != self.last_exposed:
                self.exposed_bars += 1 if exposed else -1
                self.last_exposed = exposed


def max_drawdown(values: Sequence[int]) -> Fraction:
    """Largest peak-to-trough fall as a fraction of the peak (0 when never below a peak)."""
    peak = 0
    worst_drop, worst_peak = 0, 1
    for value in values:
        if value > peak:
            peak = value
        elif peak > 0:
            drop = peak - value
            if drop * worst_peak > worst_drop * peak:
                worst_drop, worst_peak = drop, peak
    return Fraction(worst_drop, worst_peak)


def _pct(value: Fraction) -> Decimal:
    return Decimal(value.numerator) * 100 / Decimal(value.denominator)


class Performance(msgspec.Struct, frozen=True, kw_only=True):
    """Summary figures; money as ``Decimal`` in the quote currency, percentages in %."""

    initial_equity: Decimal
    final_equity: Decimal
    return_pct: Decimal
    buy_hold_pct: Decimal
    trades: int
    win_rate_pct: Decimal | None
    max_drawdown_pct: Decimal
    exposure_pct: Decimal
    fees: Decimal
    realized_pnl: Decimal


def performance(
    *,
    curve: EquityCurve,
    initial: int,
    trades: Sequence[ClosedTrade],
    fees: int,
    realized_pnl: int,
    money_precision: int,
    buy_hold: Fraction,
) -> Performance:
    """Compute the summary of a run from exact inputs."""
    scale = Decimal(10) ** -money_precision
    final = curve.values[-1] if curve.values else initial
    wins = sum(1 for trade in trades if trade.pnl > 0)
    return Performance(
        initial_equity=Decimal(initial) * scale,
        final_equity=Decimal(final) * scale,
        return_pct=_pct(Fraction(final - initial, initial)),
        buy_hold_pct=_pct(buy_hold),
        trades=len(trades),
        win_rate_pct=_pct(Fraction(wins, len(trades))) if trades else None,
        max_drawdown_pct=-_pct(max_drawdown(curve.values)),
        exposure_pct=_pct(Fraction(curve.exposed_bars, max(1, len(curve.values)))),
        fees=Decimal(fees) * scale,
        realized_pnl=Decimal(realized_pnl) * scale,
    )
