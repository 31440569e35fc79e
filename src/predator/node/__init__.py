"""The trading node: the kernel's components wired together on one bus.

For now the simulation runtime on bar data (``Backtest``) and on level-2 captures
(``L2Replay``); live runtime comes later.
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
from predator.node.governance import (
    Governance,
    GovernanceConfig,
    attach_allocator,
    attach_from_config,
)
from predator.node.l2_run import L2Replay, ReplayConfig, ReplayError, ReplayResult
from predator.node.recovery import (
    DurableJournal,
    OrderAdopted,
    RecoveryRefused,
    RecoveryReport,
    load_durable,
    prepare_resume,
    rebuild_history,
    recover,
    refuse_unaudited,
    resume_run,
)

__all__ = [
    "Backtest",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "DurableJournal",
    "Governance",
    "GovernanceConfig",
    "L2Replay",
    "OrderAdopted",
    "RecoveryRefused",
    "RecoveryReport",
    "ReplayConfig",
    "ReplayError",
    "ReplayResult",
    "RunCompleted",
    "RunStarted",
    "SafetyStatusReported",
    "StrategySpec",
    "attach_allocator",
    "attach_from_config",
    "load_durable",
    "prepare_resume",
    "rebuild_history",
    "recover",
    "refuse_unaudited",
    "resume_run",
]
