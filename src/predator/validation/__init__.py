"""Validation: the audit of a journal and the replay that rebuilds state from it.

The journal is the truth; these prove it (chain, coverage, balance equation, PnL) and
rebuild positions, cash, PnL, orders and halts from it.
"""

from predator.validation.audit import CHECKS, AuditReport, Finding, audit, audit_journal
from predator.validation.replay import (
    JournalReplayer,
    JournalUnreadable,
    OrderState,
    PoolState,
    PositionState,
    ReplayState,
    read_journal,
    replay,
    replay_journal,
)

__all__ = [
    "CHECKS",
    "AuditReport",
    "Finding",
    "JournalReplayer",
    "JournalUnreadable",
    "OrderState",
    "PoolState",
    "PositionState",
    "ReplayState",
    "audit",
    "audit_journal",
    "read_journal",
    "replay",
    "replay_journal",
]
