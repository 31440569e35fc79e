"""Chaos events: what the chaos layer did, on the :class:`~predator.chaos.bus.ChaosBus`.

They never enter the trading journal (the system under test must not see the chaos
it is subjected to). Each has a ``priority``: at one instant, a crash or partition is
reported before a venue fault, a venue fault before a bus fault, and so on.
"""

from __future__ import annotations

from typing import Any

import msgspec

from predator.chaos.config import category_of

__all__ = [
    "PRIORITY",
    "ChaosEvent",
    "FaultCleared",
    "FaultInjected",
    "ScenarioEnded",
    "ScenarioStarted",
    "priority_of",
]

PRIORITY: dict[str, int] = {
    "crash": 60,
    "storage": 55,
    "venue": 50,
    "bus": 40,
    "clock": 35,
    "strategy": 30,
    "governance": 25,
    "infrastructure": 60,
    "exchange": 50,
    "market": 10,
}
"""Priority of each fault category and scenario group (higher is delivered first)."""


def priority_of(kind: str) -> int:
    """The priority of a fault kind (a scenario group's own name works too)."""
    return PRIORITY.get(category_of(kind), 0)


class ChaosEvent(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Base of every chaos event; ``ts`` is kernel-clock nanoseconds."""

    ts: int

    @property
    def priority(self) -> int:
        """Delivery order among events of one ``ts`` (higher first)."""
        return 0


class FaultInjected(ChaosEvent, frozen=True, kw_only=True):
    """A fault started: ``kind`` (config key) against ``target``, active until ``until_ts``.

    ``detail`` holds what was done (parameters, the message corrupted, ...); a fault
    that is not applicable in this runtime says so in ``detail["not_applicable"]``.
    """

    fault_id: str
    kind: str
    target: str
    detail: dict[str, Any] = {}
    until_ts: int | None = None

    @property
    def priority(self) -> int:
        return priority_of(self.kind)


class FaultCleared(ChaosEvent, frozen=True, kw_only=True):
    """A fault ended (its duration ran out, or the campaign cleared it)."""

    fault_id: str
    kind: str

    @property
    def priority(self) -> int:
        return priority_of(self.kind)


class ScenarioStarted(ChaosEvent, frozen=True, kw_only=True):
    """A scenario of the library began; ``group`` is market, infrastructure, exchange,
    strategy or governance."""

    scenario: str
    group: str
    params: dict[str, Any] = {}

    @property
    def priority(self) -> int:
        return PRIORITY.get(self.group, 0)


class ScenarioEnded(ChaosEvent, frozen=True, kw_only=True):
    """A scenario finished; ``handled`` says whether the system reacted as expected and
    ``detected_by`` names what noticed it (empty when nothing did)."""

    scenario: str
    group: str
    handled: bool
    detected_by: tuple[str, ...] = ()
    detail: dict[str, Any] = {}

    @property
    def priority(self) -> int:
        return PRIORITY.get(self.group, 0)
