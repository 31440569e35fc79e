"""Built-in strategies, by name."""

from predator.strategy.builtins.ema_cross import EmaCross
from predator.strategy.builtins.sma_cross import SmaCross

__all__ = ["BUILTINS", "EmaCross", "SmaCross"]

BUILTINS = {cls.name: cls for cls in (SmaCross, EmaCross)}
