"""SMA cross: long when the fast simple moving average crosses above the slow one,
short when it crosses below (closing the previous position first).

The averages are exact: running integer sums, compared by cross-multiplication.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from predator.market.bar import Bar
from predator.strategy.api import Strategy

__all__ = ["SmaCross"]


class SmaCross(Strategy):
    """Trend following on two simple moving averages of the close."""

    name: ClassVar[str] = "sma_cross"
    parameters: ClassVar[dict[str, Any]] = {"fast": 10, "slow": 30}
    fast: int
    slow: int

    def on_start(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ValueError(
                f"sma_cross needs 0 < fast < slow, got fast={self.fast} slow={self.slow}"
            )
        self.warmup = self.slow - 1
        self._window: deque[int] = deque()
        self._fast_sum = 0
        self._slow_sum = 0
        self._prev_diff: int | None = None

    def on_bar(self, bar: Bar) -> None:
        close = bar.close
        window = self._window
        window.append(close)
        self._fast_sum += close
        self._slow_sum += close
        n = len(window)
        if n > self.fast:
            self._fast_sum -= window[-self.fast - 1]
        if n > self.slow:
            self._slow_sum -= window.popleft()
            n -= 1
        if n < self.slow:
            return
        # sign(fast_sma - slow_sma) without division: fast_sum*slow - slow_sum*fast
        diff = self._fast_sum * self.slow - self._slow_sum * self.fast
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
