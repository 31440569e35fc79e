"""Validation: the audit of a journal and the replay that rebuilds state from it.

The journal is the truth; these prove it (chain, coverage, balance equation, PnL) and
rebuild positions, cash, PnL, orders and halts from it; post-mortems explain each halt.
"""

from predator.validation.audit import CHECKS, AuditReport, Finding, audit, audit_journal
from predator.validation.postmortem import (
    Incident,
    PostMortem,
    Reason,
    Resumption,
    TimelineEntry,
    build_postmortem,
    build_postmortems,
    find_incidents,
    write_postmortems,
)
from predator.validation.reconciliation import (
    DEFAULT_INTERVAL_NS,
    Discrepancy,
    FillRecovered,
    OrderOutcomeRecovered,
    Reconciliation,
    ReconciliationCompleted,
    ReconciliationMismatch,
    ReconciliationReport,
)
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
    "DEFAULT_INTERVAL_NS",
    "AuditReport",
    "Discrepancy",
    "FillRecovered",
    "Finding",
    "Incident",
    "JournalReplayer",
    "JournalUnreadable",
    "OrderOutcomeRecovered",
    "OrderState",
    "PoolState",
    "PositionState",
    "PostMortem",
    "Reason",
    "Reconciliation",
    "ReconciliationCompleted",
    "ReconciliationMismatch",
    "ReconciliationReport",
    "ReplayState",
    "Resumption",
    "TimelineEntry",
    "audit",
    "audit_journal",
    "build_postmortem",
    "build_postmortems",
    "find_incidents",
    "read_journal",
    "replay",
    "replay_journal",
    "write_postmortems",
]
