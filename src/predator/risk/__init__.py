"""The risk layer: the RiskEngine ("CRO") with absolute authority over every order.

No order reaches a venue without passing it; when it cannot see, it fails closed.
"""

from predator.risk.risk_engine import (
    RiskDecision,
    RiskEngine,
    RiskLimits,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)

__all__ = [
    "RiskDecision",
    "RiskEngine",
    "RiskLimits",
    "SubmitOrder",
    "TradingState",
    "TradingStateChanged",
]
