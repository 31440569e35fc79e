"""SMA cross: long when the fast simple moving average crosses above the slow one,
short when it crosses below (closing the previous position first).

The averages are exact: running integer sums, compared by cross-multiplication.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from predator.market.bar import Bar
from predator.strategy.builtins._cross import MovingAverageCross

__all__ = ["SmaCross"]


class SmaCross(MovingAverageCross):
    """Trend following on two simple moving averages of the close."""

    name: ClassVar[str] = "sma_cross"
    parameters: ClassVar[dict[str, Any]] = {"fast": 10, "slow": 30}

    def start_averages(self) -> None:
        self._window: deque[int] = deque()
        self._fast_sum = 0
        self._slow_sum = 0

    def difference(self, bar: Bar) -> int | None:
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
            return None
        # sign(fast_sma - slow_sma) without division
        return self._fast_sum * self.slow - self._slow_sum * self.fast
