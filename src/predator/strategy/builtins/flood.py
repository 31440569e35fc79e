"""Flood: a deliberately faulty strategy that sends orders at ten times a sane rate.

For chaos tests and demos: the risk layer must rate-limit it, open its circuit
breaker and stop it, while the other strategies keep trading untouched.
"""

from __future__ import annotations

from typing import Any, ClassVar

from predator.market.bar import Bar
from predator.strategy.api import Strategy

__all__ = ["Flood"]


class Flood(Strategy):
    """Sends ``orders_per_bar`` one-unit market orders on every bar, alternating sides.

    The default, 300 a minute on 1-minute bars, is ten times the default per-strategy
    order-rate limit (30 a minute).
    """

    name: ClassVar[str] = "flood"
    parameters: ClassVar[dict[str, Any]] = {"orders_per_bar": 300, "units": 1}
    orders_per_bar: int
    units: int

    def check_parameters(self) -> None:
        if self.orders_per_bar < 1 or self.units < 1:
            raise ValueError("flood needs orders_per_bar >= 1 and units >= 1")

    def on_start(self) -> None:
        self._flip = False

    def on_bar(self, bar: Bar) -> None:
        for _ in range(self.orders_per_bar):
            self._flip = not self._flip
            if self._flip:
                self.buy(self.units)
            else:
                self.sell(self.units)
