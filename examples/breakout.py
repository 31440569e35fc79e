"""Example user strategy: a channel breakout, loaded with --strategy examples/breakout.py."""

from __future__ import annotations

from typing import Any, ClassVar

from predator.market import Bar
from predator.strategy import Strategy


class Breakout(Strategy):
    """Buy a close at the top of the last ``lookback`` highs; exit below the channel."""

    parameters: ClassVar[dict[str, Any]] = {"lookback": 20}
    lookback: int

    def on_start(self) -> None:
        self.warmup = self.lookback - 1
        self.highs: list[int] = []

    def on_bar(self, bar: Bar) -> None:
        self.highs = [*self.highs, bar.high][-self.lookback :]
        if len(self.highs) < self.lookback:
            return
        if not self.position and bar.close >= max(self.highs):
            self.buy()
        elif self.position and bar.close < min(self.highs):
            self.close()
