"""Portfolio: positions, cash and PnL derived from fills, posted to the ledger.

Also the run's performance statistics (equity curve, drawdown, win rate).
"""

from predator.portfolio.portfolio import Portfolio
from predator.portfolio.position import ClosedTrade, Lot, Position
from predator.portfolio.stats import EquityCurve, Performance, max_drawdown, performance

__all__ = [
    "ClosedTrade",
    "EquityCurve",
    "Lot",
    "Performance",
    "Portfolio",
    "Position",
    "max_drawdown",
    "performance",
]
