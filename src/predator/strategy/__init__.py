"""Strategies: the API user code implements, built-ins, loading and the runner.

Strategies only express intents; the risk layer decides what reaches the venue.
"""

from predator.strategy.api import Sizing, Strategy, StrategyContext
from predator.strategy.builtins import BUILTINS, EmaCross, Flood, MarketMaker, SmaCross
from predator.strategy.registry import StrategyError, build_strategy, resolve_strategy
from predator.strategy.runner import CancelOrder, StrategyFailed, StrategyRunner, StrategyStopped

__all__ = [
    "BUILTINS",
    "CancelOrder",
    "EmaCross",
    "Flood",
    "MarketMaker",
    "Sizing",
    "SmaCross",
    "Strategy",
    "StrategyContext",
    "StrategyError",
    "StrategyFailed",
    "StrategyRunner",
    "StrategyStopped",
    "build_strategy",
    "resolve_strategy",
]
