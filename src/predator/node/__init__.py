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
from predator.node.recovery import (
    DurableJournal,
    OrderAdopted,
    RecoveryRefused,
    RecoveryReport,
    load_durable,
    rebuild_history,
    recover,
    resume_run,
)

__all__ = [
    "Backtest",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "DurableJournal",
    "OrderAdopted",
    "RecoveryRefused",
    "RecoveryReport",
    "RunCompleted",
    "RunStarted",
    "SafetyStatusReported",
    "StrategySpec",
    "load_durable",
    "rebuild_history",
    "recover",
    "resume_run",
]
