"""The risk layer: the RiskEngine ("CRO") with absolute authority over every order.

No order reaches a venue without passing it; when it cannot see, it fails closed.
Circuit breakers, kill switches, protections, sizing and PnL tracking live here too.
"""

from predator.risk.circuit_breaker import (
    BreakerConfig,
    BreakerState,
    BreakerStateChanged,
    CircuitBreaker,
)
from predator.risk.config import ConfigError, RiskConfig, load_risk_config
from predator.risk.emergency_stop import (
    EmergencyStop,
    KillScope,
    KillSwitchReset,
    KillSwitchTripped,
    OperatorApproved,
    ResumeNotApproved,
)
from predator.risk.pnl_tracker import AllocationRule, ProfitLossTracker
from predator.risk.position_sizing import PositionSizeManager, SizingLimits
from predator.risk.protections import (
    CooldownPeriod,
    LowProfitLock,
    MaxDrawdownProtection,
    ProtectionLock,
    ProtectionLocked,
    Protections,
    StoplossGuard,
)
from predator.risk.risk_engine import (
    RiskDecision,
    RiskEngine,
    RiskLimits,
    StrategyRisk,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)

__all__ = [
    "AllocationRule",
    "BreakerConfig",
    "BreakerState",
    "BreakerStateChanged",
    "CircuitBreaker",
    "ConfigError",
    "CooldownPeriod",
    "EmergencyStop",
    "KillScope",
    "KillSwitchReset",
    "KillSwitchTripped",
    "LowProfitLock",
    "MaxDrawdownProtection",
    "OperatorApproved",
    "PositionSizeManager",
    "ProfitLossTracker",
    "ProtectionLock",
    "ProtectionLocked",
    "Protections",
    "ResumeNotApproved",
    "RiskConfig",
    "RiskDecision",
    "RiskEngine",
    "RiskLimits",
    "SizingLimits",
    "StoplossGuard",
    "StrategyRisk",
    "SubmitOrder",
    "TradingState",
    "TradingStateChanged",
    "load_risk_config",
]
