"""Campaign metrics (issue seed 4.9), computed from the journal records and the chaos log.

Uptime (share of simulated time the global trading state allowed trading: no global
kill switch, no execution halt, no global trading halt, node up), kill-switch trips,
recovery time after a halt (mean, max) and MTTR, max drawdown per pool and engine,
state-corruption incidents, execution/portfolio mismatches, event loss, scenarios and
faults injected, and the share of halts survived without human intervention.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predator.campaign.timeline import Halt, read_timeline
from predator.ledger.journal import JournalRecord
from predator.validation.audit import Finding
from predator.validation.postmortem import find_incidents

if TYPE_CHECKING:
    from predator.campaign.operator import AutoOperator

__all__ = ["compute_metrics", "incidents_of", "pct"]

NS_PER_SECOND = 1_000_000_000
HUMAN_ACTORS_EXCLUDED = ("auto-operator", "system", "risk", "reconciliation", "invariants")


def pct(value: Fraction) -> str:
    """A fraction as a percentage with two decimals (exact rounding, half even)."""
    return str(
        (Decimal(value.numerator) * 100 / Decimal(value.denominator)).quantize(Decimal("0.01"))
    )


def _seconds(ns: int | Fraction) -> str:
    return str((Decimal(int(ns)) / NS_PER_SECOND).quantize(Decimal("0.1")))


def _union(intervals: list[tuple[int, int]]) -> int:
    """Total length covered by ``intervals``."""
    covered, end = 0, None
    for lo, hi in sorted(intervals):
        if end is None or lo > end:
            covered += hi - lo
            end = hi
        elif hi > end:
            covered += hi - end
            end = hi
    return covered


def compute_metrics(
    *,
    records: list[JournalRecord],
    chaos_log: list[dict[str, Any]],
    planned: dict[str, int],
    findings: list[Finding],
    drawdowns: dict[str, Fraction],
    lost_events: int,
    final_mismatches: list[str],
    start_ts: int,
    end_ts: int,
    operator: AutoOperator,
    bars_simulated: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, scenarios)`` of one campaign (see the module docstring)."""
    timeline = read_timeline(records)
    span = max(1, end_ts - start_ts)
    global_halts = [h for h in timeline.halts if h.global_ and h.kind != "strategy"]
    down = [(max(h.start, start_ts), min(h.end or end_ts, end_ts)) for h in global_halts]
    uptime = Fraction(span - _union([d for d in down if d[1] > d[0]]), span)
    kill_trips: dict[str, int] = {"global": 0, "engine": 0, "strategy": 0}
    for halt in timeline.halts:
        if halt.kind == "kill_switch":
            kind = halt.scope.partition(":")[0]
            kill_trips[kind] = kill_trips.get(kind, 0) + 1
    recovered = [h for h in global_halts if h.end is not None]
    times = [h.end - h.start for h in recovered if h.end is not None]
    all_resolved = [h for h in timeline.halts if h.end is not None]
    repair = [h.end - h.start for h in all_resolved if h.end is not None]
    automatic = [
        h
        for h in global_halts
        if h.end is not None and h.resumed_by in (None, *HUMAN_ACTORS_EXCLUDED)
    ]
    counts = timeline.counts
    corrected = (
        counts.get("FillRecovered", 0)
        + counts.get("FillReversed", 0)
        + counts.get("OrderOutcomeRecovered", 0)
    )
    injected = [e for e in chaos_log if e["type"] == "FaultInjected"]
    by_kind: dict[str, int] = {}
    seen_ids: set[str] = set()
    for event in injected:
        if event["fault_id"] in seen_ids:
            continue  # re-applied to a restarted node: one fault
        seen_ids.add(event["fault_id"])
        by_kind[event["kind"]] = by_kind.get(event["kind"], 0) + 1
    started = [e for e in chaos_log if e["type"] == "ScenarioStarted"]
    scenario_counts: dict[str, int] = {}
    for event in started:
        scenario_counts[event["scenario"]] = scenario_counts.get(event["scenario"], 0) + 1
    metrics: dict[str, Any] = {
        "uptime_pct": pct(uptime),
        "simulated_days": str(Decimal(span) / (86_400 * NS_PER_SECOND)),
        "bars_simulated": bars_simulated,
        "kill_switch_trips": sum(kill_trips.values()),
        "kill_switch_trips_by_scope": kill_trips,
        "halts": len(global_halts),
        "halts_by_kind": _by_kind(global_halts),
        "halts_unresolved": len(global_halts) - len(recovered),
        "recovery_time_s": {
            "mean": _seconds(Fraction(sum(times), len(times))) if times else None,
            "max": _seconds(max(times)) if times else None,
            "count": len(times),
        },
        "mttr_s": _seconds(Fraction(sum(repair), len(repair))) if repair else None,
        "max_drawdown_pct": {name: pct(value) for name, value in sorted(drawdowns.items())},
        "state_corruption_incidents": len(findings) + counts.get("InvariantViolated", 0),
        "audit_findings": len(findings),
        "execution_portfolio_mismatches": {
            "detected": timeline.discrepancies,
            "corrected": corrected,
            "unresolved": len(final_mismatches),
        },
        "event_loss": {
            "journal_events_lost_in_crashes": lost_events,
            "venue_reports_recovered": corrected + counts.get("OrderAdopted", 0),
            "unrecovered": len(final_mismatches),
        },
        "crashes": counts.get("NodeCrashed", 0),
        "faults_injected": len(seen_ids),
        "faults_planned": sum(planned.values()),
        "scenarios_injected": len(started),
        "survived_without_human_pct": pct(Fraction(len(automatic), len(global_halts)))
        if global_halts
        else "100.00",
        "strategy_deaths": len(timeline.deaths),
        "strategies_left_dead": sorted(operator.dead),
        "orders_approved": len(timeline.approvals),
        "orders_sent": sum(1 for a in timeline.approvals if a.submitted),
        "fills": counts.get("OrderFilled", 0),
        "journal_events": len(records),
    }
    scenarios = {
        "faults_by_kind": dict(sorted(by_kind.items())),
        "faults_planned_by_kind": dict(sorted(planned.items())),
        "scenarios": dict(sorted(scenario_counts.items())),
    }
    return metrics, scenarios


def _by_kind(halts: list[Halt]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for halt in halts:
        counts[halt.kind] = counts.get(halt.kind, 0) + 1
    return dict(sorted(counts.items()))


def incidents_of(records: list[JournalRecord], postmortem_dir: Path | None) -> list[dict[str, Any]]:
    """The journal's incidents, each with its post-mortem file when one was written."""
    out: list[dict[str, Any]] = []
    for incident in find_incidents(records):
        entry: dict[str, Any] = {
            "seq": incident.seq,
            "ts": incident.ts,
            "time": incident.time,
            "type": incident.type,
            "scope": incident.scope,
            "reason": incident.reason,
            "trigger": incident.trigger,
            "actor": incident.actor,
            "postmortem": None,
        }
        if postmortem_dir is not None:
            path = postmortem_dir / f"{incident.seq}-{incident.type}.md"
            if path.exists():
                entry["postmortem"] = str(path)
        out.append(entry)
    return out
