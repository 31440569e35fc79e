"""The campaign's pass/fail gates: the system's promise, checked against its own journal.

FAIL when the system traded blind (an order sent, adding exposure, while market data was
invalid or a frozen-feed fault had outlived the staleness limit), a kill switch failed
(an order sent in a tripped or halted scope, or by a stopped strategy), the portfolio
state became inconsistent (audit findings, invariant violations, an unresolved venue
mismatch, a node that died for good), one strategy's failure stopped the others, or a
halt lacks its explanation. PASS also needs evidence: halts and recoveries under chaos,
and strategies dying while the system lives. Each gate names the evidence it failed on.
"""

from __future__ import annotations

from typing import Any

import msgspec

from predator.campaign.timeline import Approval, Timeline, read_timeline
from predator.ledger.journal import JournalRecord
from predator.validation.audit import Finding

__all__ = ["GATES", "GateResult", "evaluate_gates", "verdict_of"]

NS_PER_DAY = 86_400 * 1_000_000_000

GATES: dict[str, str] = {
    "no_blind_trading": "no order adding exposure sent while market data was stale or invalid",
    "kill_switch_held": "no order sent in a tripped or halted scope, or by a stopped strategy",
    "state_consistent": "no audit finding, invariant violation or unresolved venue mismatch",
    "strategy_isolation": "the other strategies keep trading after one strategy dies",
    "halts_explained": "every halt, crash and resumption is journaled with a reason and actor",
    "halts_and_recoveries": "chaos caused halts, and the system recovered from them",
    "strategies_die_system_lives": "a strategy died and the rest of the system kept trading",
}
"""Every gate by name, with what it requires."""

EXAMPLES = 3
"""Evidence lines kept per gate."""


class GateResult(msgspec.Struct, frozen=True, kw_only=True):
    """One gate's verdict: ``PASS``, ``FAIL`` or ``SKIP`` (not applicable), with evidence."""

    name: str
    status: str
    requirement: str
    detail: str
    evidence: list[str] = []
    first_seq: int | None = None
    first_ts: int | None = None


def _gate(
    name: str, failed: bool, detail: str, evidence: list[str] | None = None,
    first: Approval | tuple[int, int] | None = None, skip: bool = False,
) -> GateResult:  # fmt: skip
    seq = ts = None
    if isinstance(first, Approval):
        seq, ts = first.seq, first.ts
    elif first is not None:
        seq, ts = first
    return GateResult(
        name=name,
        status="SKIP" if skip else ("FAIL" if failed else "PASS"),
        requirement=GATES[name],
        detail=detail,
        evidence=(evidence or [])[:EXAMPLES],
        first_seq=seq if failed else None,
        first_ts=ts if failed else None,
    )


def _frozen_windows(chaos_log: list[dict[str, Any]], grace_ns: int) -> list[tuple[int, int, str]]:
    """``(from, to, fault_id)`` during which a frozen feed had outlived the staleness limit."""
    starts: dict[str, int] = {}
    windows: list[tuple[int, int, str]] = []
    for event in chaos_log:
        if event["type"] == "FaultInjected" and event["kind"] == "frozen_market_data":
            starts.setdefault(event["fault_id"], int(event["ts"]))
        elif event["type"] == "FaultCleared" and event["fault_id"] in starts:
            begun = starts.pop(event["fault_id"])
            windows.append((begun + grace_ns, int(event["ts"]), event["fault_id"]))
    for fault_id, begun in starts.items():
        windows.append((begun + grace_ns, 2**63, fault_id))
    return [w for w in windows if w[1] > w[0]]


def _blind(timeline: Timeline, chaos_log: list[dict[str, Any]], grace_ns: int) -> GateResult:
    windows = _frozen_windows(chaos_log, grace_ns)
    bad: list[tuple[Approval, str]] = []
    for approval in timeline.approvals:
        if not approval.submitted or approval.reducing:
            continue
        if approval.invalid_data is not None:
            bad.append((approval, f"market data invalid ({approval.invalid_data})"))
            continue
        for lo, hi, fault_id in windows:
            if lo <= approval.ts < hi:
                bad.append((approval, f"feed frozen ({fault_id})"))
                break
    evidence = [
        f"seq {a.seq}: {a.strategy} order {a.client_order_id} sent, {why}" for a, why in bad
    ]
    detail = f"{len(bad)} orders sent blind" if bad else "no order sent blind"
    return _gate("no_blind_trading", bool(bad), detail, evidence, bad[0][0] if bad else None)


def _kill_switch(timeline: Timeline) -> GateResult:
    bad = [a for a in timeline.approvals if a.submitted and not a.reducing and a.blocked]
    evidence = [
        f"seq {a.seq}: {a.strategy} order {a.client_order_id} sent: {a.blocked}" for a in bad
    ]
    detail = f"{len(bad)} orders sent through a halt" if bad else "every halt held"
    return _gate("kill_switch_held", bool(bad), detail, evidence, bad[0] if bad else None)


def _consistent(
    records: list[JournalRecord],
    findings: list[Finding],
    final_mismatches: list[str],
    fatal: str | None,
    timeline: Timeline,
) -> tuple[GateResult, list[str]]:
    """(the gate, inconsistencies the system detected itself and contained by halting).

    An inconsistency reconciliation flagged (its trade id is in a mismatch) while the
    global kill switch it tripped is still holding is contained: the system knows its
    books are wrong and trades no more. Anything else is a failure.
    """
    flagged = {
        str(d.get("subject"))
        for r in records
        if r.type == "ReconciliationMismatch"
        for d in r.payload.get("discrepancies", ())
    }
    halted = any(
        h.kind == "kill_switch" and h.global_ and h.trigger == "reconciliation_mismatch"
        and h.end is None
        for h in timeline.halts
    )  # fmt: skip
    contained: list[str] = []
    evidence: list[str] = []
    for finding in findings:
        line = f"audit seq {finding.seq}: {finding.check}: {finding.message}"
        caught = any(subject in finding.message for subject in flagged)
        (contained if caught and halted else evidence).append(line)
    for mismatch in final_mismatches:
        (contained if halted else evidence).append(f"venue mismatch at the end: {mismatch}")
    evidence += [
        f"seq {r.seq}: invariant violated: {r.payload.get('message', r.payload)}"
        for r in records
        if r.type == "InvariantViolated"
    ]
    evidence += [
        f"seq {h.seq}: kill switch tripped by a violated invariant: {h.reason}"
        for h in timeline.halts
        if h.kind == "kill_switch" and h.trigger == "invariant_violation"
    ]
    if fatal is not None:
        evidence.insert(0, fatal)
    first = next(((f.seq, 0) for f in findings if f.seq is not None), None)
    if evidence:
        detail = f"{len(evidence)} inconsistencies"
    elif contained:
        detail = f"{len(contained)} inconsistencies detected by reconciliation and contained"
    else:
        detail = "books consistent with the venue"
    return _gate("state_consistent", bool(evidence), detail, evidence, first), contained


def _isolation(timeline: Timeline, end_ts: int) -> tuple[GateResult, GateResult]:
    """(strategy isolation, strategies die while the system lives)."""
    sent = [a for a in timeline.approvals if a.submitted]
    broken: list[str] = []
    lived = False
    first: tuple[int, int] | None = None
    global_halts = [
        (h.start, h.end or end_ts) for h in timeline.halts if h.global_ and h.kind != "strategy"
    ]
    for ts, name, reason in timeline.deaths:
        others = [a for a in sent if a.ts > ts and a.strategy != name]
        halted = sum(max(0, min(hi, end_ts) - max(lo, ts)) for lo, hi in global_halts)
        if others:
            lived = True
        elif end_ts - ts - halted >= NS_PER_DAY:  # a day of allowed trading, and nobody did
            broken.append(f"after {name} died ({reason}), no other strategy traded again")
            first = first or (0, ts)
    isolation = _gate(
        "strategy_isolation",
        bool(broken),
        f"{len(timeline.deaths)} strategy deaths, the others traded on"
        if not broken
        else broken[0],
        broken,
        first,
    )
    lives = _gate(
        "strategies_die_system_lives",
        not (timeline.deaths and lived),
        f"{len(timeline.deaths)} strategies died; trading continued"
        if timeline.deaths and lived
        else "no strategy died while the others traded on",
    )
    return isolation, lives


def evaluate_gates(
    *,
    records: list[JournalRecord],
    chaos_log: list[dict[str, Any]],
    findings: list[Finding],
    final_mismatches: list[str],
    fatal: str | None,
    chaos_active: bool,
    stale_grace_ns: int,
    end_ts: int,
) -> list[GateResult]:
    """Every gate of :data:`GATES`, in order."""
    timeline = read_timeline(records)
    crashes = sum(
        1 for e in chaos_log if e["type"] == "FaultInjected" and e["kind"] == "process_crash"
    )
    explained = list(timeline.unexplained)
    journaled_crashes = timeline.counts.get("NodeCrashed", 0)
    if journaled_crashes < crashes and fatal is None:
        explained.append(f"{crashes - journaled_crashes} crashes without a NodeCrashed record")
    explained += [f"audit seq {f.seq}: {f.message}" for f in findings if f.check == "kill_switch"]
    halts = [h for h in timeline.halts if h.kind != "strategy" or h.reason.startswith("raised")]
    recoveries = [h for h in halts if h.end is not None]
    isolation, lives = _isolation(timeline, end_ts)
    consistent, _contained = _consistent(records, findings, final_mismatches, fatal, timeline)
    return [
        _blind(timeline, chaos_log, stale_grace_ns),
        _kill_switch(timeline),
        consistent,
        isolation,
        _gate(
            "halts_explained",
            bool(explained),
            f"{len(explained)} halts unexplained"
            if explained
            else f"{len(timeline.halts)} halts, all explained",
            explained,
        ),
        _gate(
            "halts_and_recoveries",
            not (halts and recoveries),
            f"{len(halts)} halts, {len(recoveries)} recovered",
            skip=not chaos_active,
        ),
        lives,
    ]


def verdict_of(gates: list[GateResult]) -> str:
    """``PASS`` when no gate failed, ``FAIL`` otherwise."""
    return "FAIL" if any(gate.status == "FAIL" for gate in gates) else "PASS"
