"""The trading node: the kernel's components wired together on one bus.

For now the simulation runtime on bar data (``Backtest``); live runtime comes later.
"""

from predator.node.backtest import (
    Backtest,
    BacktestConfig,
    BacktestError,
    BacktestResult,
    RunCompleted,
    RunStarted,
    SafetyStatusReported,
    StrategySpec,
)

__all__ = [
    "Backtest",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "RunCompleted",
    "RunStarted",
    "SafetyStatusReported",
    "StrategySpec",
]
