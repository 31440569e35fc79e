"""The CRO heartbeat as execution sees it: no heartbeat, no orders.

The risk engine publishes ``CroHeartbeat``; execution remembers the last one and,
when it is older than the timeout, fails closed: it halts and sends nothing until the
heartbeat is back *and* an operator approves the resumption.
"""

from __future__ import annotations

from typing import ClassVar

from predator.core.events import Event

__all__ = ["CroHeartbeat", "ExecutionHalted", "ExecutionResumed", "ResumeRefused"]


class CroHeartbeat(Event, frozen=True, kw_only=True):
    """The risk engine (CRO) is alive."""

    journaled: ClassVar[bool] = False


class ExecutionHalted(Event, frozen=True, kw_only=True):
    """Execution stopped sending orders; ``reason`` says why (e.g. CRO silent)."""

    reason: str
    last_heartbeat_ts: int | None


class ExecutionResumed(Event, frozen=True, kw_only=True):
    """An operator approved the resumption after the heartbeat came back."""

    actor: str
    reason: str


class ResumeRefused(RuntimeError):
    """Execution cannot resume yet (the CRO is still silent)."""
