"""The scenario library: named, parameterised attacks with what must detect them.

Market scenarios transform a real bar path (exact ints, OHLC kept consistent); the
others are compositions of faults with a check of the system's reaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from predator.chaos.config import SCENARIO_NAMES

__all__ = ["Scenario", "ScenarioLibrary"]


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """One scenario: its ``group``, default ``params``, what should detect it and what
    handled means; ``requires`` names an optional component it needs (``allocator``)."""

    name: str
    group: str
    description: str
    detected_by: tuple[str, ...]
    handled: str
    params: dict[str, Any] = {}
    requires: tuple[str, ...] = ()


class ScenarioLibrary:
    """Every scenario of the issue, by name (``ScenarioLibrary().get("flash_crash")``)."""

    def __init__(self) -> None:
        self._scenarios: dict[str, Scenario] = {}

    def names(self) -> tuple[str, ...]:
        return SCENARIO_NAMES

    def get(self, name: str) -> Scenario:
        return self._scenarios[name]

    def transform_for(self, name: str) -> Callable[..., Any] | None:
        return None
