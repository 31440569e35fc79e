"""EMA cross: like SMA cross, on exponential moving averages (alpha = 2 / (n + 1)).

The averages are signals, not money, so they are floats; order sizes and prices
stay exact.
"""

from __future__ import annotations

from typing import Any, ClassVar

from predator.market.bar import Bar
from predator.strategy.api import Strategy

__all__ = ["EmaCross"]


class EmaCross(Strategy):
    """Trend following on two exponential moving averages of the close."""

    name: ClassVar[str] = "ema_cross"
    parameters: ClassVar[dict[str, Any]] = {"fast": 12, "slow": 26}
    fast: int
    slow: int

    def on_start(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ValueError(
                f"ema_cross needs 0 < fast < slow, got fast={self.fast} slow={self.slow}"
            )
        self.warmup = self.slow - 1
        self._alpha_fast = 2.0 / (self.fast + 1)
        self._alpha_slow = 2.0 / (self.slow + 1)
        self._ema_fast: float | None = None
        self._ema_slow = 0.0
        self._bars = 0
        self._prev_diff: float | None = None

    def on_bar(self, bar: Bar) -> None:
        close = float(bar.close)
        self._bars += 1
        if self._ema_fast is None:
            self._ema_fast = self._ema_slow = close
            return
        self._ema_fast += self._alpha_fast * (close - self._ema_fast)
        self._ema_slow += self._alpha_slow * (close - self._ema_slow)
        if self._bars < self.slow:
            return
        diff = self._ema_fast - self._ema_slow
        prev = self._prev_diff
        self._prev_diff = diff
        if prev is None:
            return
        if prev < 0 < diff:
            self.close()
            self.buy()
        elif prev > 0 > diff:
            self.close()
            self.sell()
