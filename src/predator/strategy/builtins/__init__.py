"""Built-in strategies, by name."""

from predator.strategy.builtins.ema_cross import EmaCross
from predator.strategy.builtins.flood import Flood
from predator.strategy.builtins.market_maker import MarketMaker
from predator.strategy.builtins.sma_cross import SmaCross

__all__ = ["BUILTINS", "EmaCross", "Flood", "MarketMaker", "SmaCross"]

BUILTINS = {cls.name: cls for cls in (SmaCross, EmaCross, Flood, MarketMaker)}
