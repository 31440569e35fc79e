"""EMA cross: like SMA cross, on exponential moving averages (alpha = 2 / (n + 1)).

The averages are signals, not money, so they are floats; order sizes and prices
stay exact.
"""

from __future__ import annotations

from typing import Any, ClassVar

from predator.market.bar import Bar
from predator.strategy.builtins._cross import MovingAverageCross

__all__ = ["EmaCross"]


class EmaCross(MovingAverageCross):
    """Trend following on two exponential moving averages of the close."""

    name: ClassVar[str] = "ema_cross"
    parameters: ClassVar[dict[str, Any]] = {"fast": 12, "slow": 26}

    def start_averages(self) -> None:
        self._alpha_fast = 2.0 / (self.fast + 1)
        self._alpha_slow = 2.0 / (self.slow + 1)
        self._ema_fast = self._ema_slow = 0.0
        self._bars = 0

    def difference(self, bar: Bar) -> float | None:
        close = float(bar.close)
        self._bars += 1
        if self._bars == 1:
            self._ema_fast = self._ema_slow = close
            return None
        self._ema_fast += self._alpha_fast * (close - self._ema_fast)
        self._ema_slow += self._alpha_slow * (close - self._ema_slow)
        if self._bars < self.slow:
            return None
        return self._ema_fast - self._ema_slow
