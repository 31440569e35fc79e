"""Shared logic of the moving-average cross strategies: act on a change of sign."""

from __future__ import annotations

from typing import Any, ClassVar

from predator.market.bar import Bar
from predator.strategy.api import Strategy

__all__ = ["MovingAverageCross"]


class MovingAverageCross(Strategy):
    """Long when ``fast`` crosses above ``slow``, short when below; subclasses measure.

    On a cross the previous position is closed first, then a new one opened with the
    run's default sizing (backtesting.py's SmaCross example, exactly).
    """

    parameters: ClassVar[dict[str, Any]] = {"fast": 10, "slow": 30}
    fast: int
    slow: int

    def check_parameters(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ValueError(
                f"{self.name} needs 0 < fast < slow, got fast={self.fast} slow={self.slow}"
            )

    def on_start(self) -> None:
        self.check_parameters()
        self.warmup = self.slow - 1
        self._prev_sign = 0
        self.start_averages()

    def start_averages(self) -> None:
        """Reset the subclass's indicator state."""

    def difference(self, bar: Bar) -> float | int | None:
        """Something with the sign of ``fast - slow`` after ``bar``; ``None`` while warming up."""
        raise NotImplementedError

    def on_bar(self, bar: Bar) -> None:
        diff = self.difference(bar)
        if diff is None:
            return
        sign = (diff > 0) - (diff < 0)
        prev, self._prev_sign = self._prev_sign, sign
        if prev < 0 < sign:
            self.close()
            self.buy()
        elif prev > 0 > sign:
            self.close()
            self.sell()
