"""Did the system notice each scenario? Its detectors, looked for in the journal.

Each scenario of the library names what must detect it (``detected_by``: a protection,
a kill-switch trigger, reconciliation, the stale-data guard...). After the run, the
journal records of the scenario's window (plus an hour) are searched for each
detector's trace; ``ScenarioEnded`` reports which fired and whether any did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from predator.campaign.data import PlacedScenario
from predator.chaos import ChaosBus, ScenarioEnded, ScenarioLibrary
from predator.ledger.journal import JournalRecord

__all__ = ["DETECTORS", "judge_scenarios"]

HOUR_NS = 3600 * 1_000_000_000

Test = Callable[[str, dict[str, Any]], bool]


def _denied(check: str) -> Test:
    return lambda kind, p: (
        kind == "RiskDecision" and not p.get("approved") and p.get("check") == check
    )


def _kill(trigger: str) -> Test:
    return lambda kind, p: kind == "KillSwitchTripped" and p.get("trigger") == trigger


def _protection(name: str) -> Test:
    return lambda kind, p: kind == "ProtectionLocked" and name in str(p.get("name", "")).lower()


DETECTORS: dict[str, Test] = {
    "max_drawdown": _protection("max_drawdown"),
    "stoploss_guard": _protection("stoploss_guard"),
    "low_profit": _protection("low_profit"),
    "kill_switch.max_loss_from_peak": _kill("loss_from_peak"),
    "kill_switch.daily_loss_limit": _kill("daily_loss"),
    "kill_switch.breaker_trips": _kill("breaker_trips"),
    "reconciliation": lambda kind, _p: (
        kind
        in (
            "FillRecovered",
            "FillReversed",
            "OrderOutcomeRecovered",
            "ReconciliationMismatch",
            "OrderAdopted",
        )
    ),
    "recovery.audit": lambda kind, _p: kind == "NodeRestarted",
    "stale_data": _denied("stale_data"),
    "rate_limit": _denied("rate_limit"),
    "price_band": _denied("price_band"),
    "circuit_breaker": lambda kind, p: kind == "BreakerStateChanged" and p.get("state") == "open",
    "execution.heartbeat": lambda kind, _p: kind == "ExecutionHalted",
    "allocator.score_rejected": lambda kind, _p: kind == "ScoreRejected",
    "allocator.score_jump": lambda kind, p: (
        kind == "ScoreRejected" and str(p.get("reason", "")).startswith("jump")
    ),
    # The overfitting guard declining to move capital (not "halted" or "no_free_cash").
    "allocator.throttled": lambda kind, p: (
        kind == "AllocationThrottled"
        and p.get("reason") in ("hysteresis", "min_interval", "daily_limit")
    ),
    "allocator.reallocated": lambda kind, _p: kind == "CapitalReallocated",
}
"""How each detector a scenario names shows in the journal."""


def judge_scenarios(
    chaos_bus: ChaosBus, scenarios: Sequence[PlacedScenario], records: Sequence[JournalRecord]
) -> None:
    """Publish ``ScenarioEnded`` for every placed scenario, with the detectors that fired."""
    library = ScenarioLibrary()
    for placed in scenarios:
        wanted = library.get(placed.name).detected_by
        low, high = placed.start_ts, placed.end_ts + HOUR_NS
        fired: list[str] = []
        for detector in wanted:
            test = DETECTORS.get(detector)
            if test is None:
                continue
            if any(low <= r.ts <= high and test(r.type, r.payload) for r in records):
                fired.append(detector)
        chaos_bus.publish(
            ScenarioEnded(
                ts=placed.end_ts,
                scenario=placed.name,
                group=placed.group,
                handled=bool(fired),
                detected_by=tuple(fired),
                detail={"expected": list(wanted)},
            )
        )
