"""Chaos: attack the whole system in deterministic simulated time and check it survives."""

from predator.chaos.bus import ChaosBus
from predator.chaos.config import (
    FAULT_KINDS,
    INTENSITIES,
    SCENARIO_NAMES,
    ChaosConfig,
    FaultSpec,
    load_chaos_config,
)
from predator.chaos.engine import ChaosEngine, PlannedFault
from predator.chaos.events import (
    ChaosEvent,
    FaultCleared,
    FaultInjected,
    ScenarioEnded,
    ScenarioStarted,
)
from predator.chaos.injector import FaultInjector, Finding
from predator.chaos.scenarios import Scenario, ScenarioLibrary, UnknownScenario

__all__ = [
    "FAULT_KINDS",
    "INTENSITIES",
    "SCENARIO_NAMES",
    "ChaosBus",
    "ChaosConfig",
    "ChaosEngine",
    "ChaosEvent",
    "FaultCleared",
    "FaultInjected",
    "FaultInjector",
    "FaultSpec",
    "Finding",
    "PlannedFault",
    "Scenario",
    "ScenarioEnded",
    "ScenarioLibrary",
    "ScenarioStarted",
    "UnknownScenario",
    "load_chaos_config",
]
