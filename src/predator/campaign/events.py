"""Journaled facts the campaign adds to the node's journal: restarts and resumptions.

Every halt must be explained in the journal, and so must every way back: a node
restarted after a crash (:class:`NodeRestarted`) and a strategy brought back by the
automated operator (:class:`StrategyRestarted`). Kill-switch approvals and execution
resumptions use the system's own events (``OperatorApproved``, ``ExecutionResumed``).
"""

from __future__ import annotations

from typing import ClassVar

from predator.core.events import Event

__all__ = ["NodeCrashed", "NodeRestarted", "StrategyRestarted"]


class NodeCrashed(Event, frozen=True, kw_only=True):
    """The node process died at ``crashed_at`` (journaled by the restarted node, first).

    ``lost_events`` journal records were not yet durable and are gone; the venue
    kept running for ``down_ns``.
    """

    crashed_at: int
    reason: str
    fault_id: str
    lost_events: int
    down_ns: int


class NodeRestarted(Event, frozen=True, kw_only=True):
    """A fresh node recovered from the durable journal and the venue and trades again."""

    actor: str
    reason: str
    durable_seq: int
    snapshot_seq: int
    fills_recovered: int
    adopted_orders: int
    reconciled: bool


class StrategyRestarted(Event, frozen=True, kw_only=True):
    """A stopped strategy was started again (its indicators re-warm from the next bar)."""

    write_ahead: ClassVar[bool] = True

    strategy: str
    actor: str
    reason: str
