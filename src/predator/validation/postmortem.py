"""Post-mortems: for every halt in a journal, what happened, why, and what resumed trading.

An incident is a halt-like event (kill switch, breaker opening, halted trading state,
strategy failure, execution halt, protection lock, correction, invariant violation). Its
post-mortem holds the chain of reasons, the timeline around it and the state before and
after, rebuilt by the replay of ``predator.validation.replay``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from predator.ledger.journal import JournalRecord
from predator.validation.replay import (
    JournalReplayer,
    ReplayState,
    reported_initial_capital,
    reversed_trade_ids,
)

__all__ = [
    "STILL_HALTED",
    "Incident",
    "PostMortem",
    "Reason",
    "Resumption",
    "TimelineEntry",
    "build_postmortem",
    "build_postmortems",
    "find_incidents",
    "write_postmortems",
]

STILL_HALTED = "nothing: still halted at the end of the journal"
"""What :attr:`PostMortem.resumed` says when no event resumed the incident's scope."""

_HALTED_STATES = frozenset({"halted", "reducing"})
_MAX_LISTED = 10  # halt-like causes listed one by one; older ones are counted
_LINE = 160  # longest detail shown on one timeline line


# -- the report ---------------------------------------------------------------------------
def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    # Whole seconds and microseconds apart: a float of ns since 1970 loses precision.
    seconds, nanos = divmod(ts, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=nanos // 1000)
    return moment.isoformat().replace("+00:00", "Z")


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """One halt-like journal event: where (``seq``, ``ts`` in ns), what, which scope, why."""

    seq: int
    ts: int
    type: str
    scope: str
    reason: str
    trigger: str | None = None
    actor: str | None = None

    @property
    def time(self) -> str:
        """``ts`` as an ISO 8601 UTC time."""
        return _iso(self.ts) or ""

    def summary(self) -> str:
        """One line: ``#seq type scope (trigger by actor): reason``."""
        cause = " ".join(
            part
            for part in (self.trigger, None if self.actor is None else f"by {self.actor}")
            if part
        )
        why = f" ({cause})" if cause else ""
        return f"#{self.seq} {self.type} {self.scope}{why}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready builtins, with ``time`` in ISO 8601."""
        return {**msgspec.to_builtins(self), "time": self.time}


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """One link of the chain of reasons; ``count`` events alike, first and last at seq."""

    seq: int | None
    type: str
    text: str
    count: int = 1
    last_seq: int | None = None


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One journal event around the incident, with its key fields on one line."""

    seq: int
    ts: int
    type: str
    detail: str

    def line(self, incident_seq: int) -> str:
        """``seq time type detail``, marked ``>>`` for the incident itself."""
        mark = ">>" if self.seq == incident_seq else "  "
        return f"{mark} {self.seq:>7} {_iso(self.ts)} {self.type:<22} {self.detail}".rstrip()


class Resumption(msgspec.Struct, frozen=True, kw_only=True):
    """What resumed the incident's scope; ``seq`` is None when nothing did."""

    seq: int | None
    ts: int | None
    type: str | None
    text: str

    def describe(self) -> str:
        """One line: ``seq N (time) Type: text``, or just ``text`` when nothing resumed."""
        if self.seq is None:
            return self.text
        return f"seq {self.seq} ({_iso(self.ts)}) {self.type}: {self.text}"


class PostMortem(msgspec.Struct, frozen=True, kw_only=True):
    """The report on one incident: reasons, timeline, state before and after, resumption.

    ``state_before`` is the replayed state after ``seq - 1``; ``state_after`` after the
    last event of the timeline.
    """

    incident: Incident
    reasons: tuple[Reason, ...]
    timeline: tuple[TimelineEntry, ...]
    state_before: ReplayState
    state_after: ReplayState
    resumed: Resumption

    @property
    def name(self) -> str:
        """The report's file stem: ``<seq>-<type>``."""
        return f"{self.incident.seq}-{self.incident.type}"

    def summary(self) -> str:
        """One line: the incident and what resumed it."""
        return f"{self.incident.summary()} -> resumed: {self.resumed.describe()}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready builtins; states as :meth:`ReplayState.to_json` gives them."""
        return {
            "incident": self.incident.to_json(),
            "reasons": msgspec.to_builtins(self.reasons),
            "timeline": [
                {**msgspec.to_builtins(entry), "time": _iso(entry.ts)} for entry in self.timeline
            ],
            "state_before": self.state_before.to_json(),
            "state_after": self.state_after.to_json(),
            "resumed": {**msgspec.to_builtins(self.resumed), "time": _iso(self.resumed.ts)},
        }

    def to_markdown(self) -> str:
        """The report as a markdown document."""
        i = self.incident
        lines = [
            f"# Post-mortem: {i.type} at seq {i.seq}",
            "",
            f"- **time**: {i.time}",
            f"- **scope**: {i.scope}",
        ]
        if i.trigger:
            lines.append(f"- **trigger**: {i.trigger}")
        if i.actor:
            lines.append(f"- **actor**: {i.actor}")
        lines += [f"- **reason**: {i.reason}", "", "## Chain of reasons", ""]
        for depth, reason in enumerate(self.reasons):
            where = "" if reason.seq is None else f"seq {reason.seq}"
            if reason.count > 1:
                where += f"..{reason.last_seq}, {reason.count} events"
            where = f" ({where})" if where else ""
            lines.append(f"{'  ' * min(depth, 1)}- {reason.type}: {reason.text}{where}")
        lines += ["", "## Timeline", "", "```"]
        lines += [entry.line(i.seq) for entry in self.timeline]
        lines += ["```", "", f"## State before (after seq {self.state_before.last_seq})", ""]
        lines += ["```", self.state_before.render(), "```", ""]
        lines += [f"## State after (after seq {self.state_after.last_seq})", ""]
        lines += ["```", self.state_after.render(), "```", "", "## What resumed trading", ""]
        lines.append(self.resumed.describe())
        return "\n".join(lines) + "\n"


# -- finding incidents ----------------------------------------------------------------------
def _payload(record: JournalRecord) -> Mapping[str, Any]:
    payload = record.payload
    return payload if isinstance(payload, Mapping) else {}


def _is_incident(record: JournalRecord) -> bool:
    kind = record.type
    payload = _payload(record)
    if kind == "BreakerStateChanged":
        return payload.get("state") == "open"
    if kind == "TradingStateChanged":
        return payload.get("state") in _HALTED_STATES
    return (
        kind
        in (
            "KillSwitchTripped",
            "StrategyFailed",
            "ExecutionHalted",
            "ProtectionLocked",
            "InvariantViolated",
            "ReconciliationMismatch",
            "FillRecovered",
            "FillReversed",
            "OrderOutcomeRecovered",
            "OrderAdopted",
        )
        or "Correction" in kind
    )


def _scope(record: JournalRecord) -> str:
    payload = _payload(record)
    if "scope" in payload:
        return str(payload["scope"])
    if record.type in ("StrategyFailed", "StrategyStopped") and "strategy" in payload:
        return f"strategy:{payload['strategy']}"
    return "global"


def _incident(record: JournalRecord) -> Incident:
    payload = _payload(record)
    if record.type == "StrategyFailed":
        reason = f"{payload.get('error')} in {payload.get('where')} at {payload.get('location')}"
    elif record.type == "BreakerStateChanged":
        reason = f"{payload.get('previous')} -> open: {payload.get('reason')}"
    elif record.type == "TradingStateChanged":
        reason = f"{payload.get('previous')} -> {payload.get('state')}: {payload.get('reason')}"
    elif record.type == "ReconciliationMismatch":
        reason = "; ".join(
            f"{d.get('kind')} {d.get('subject')}: ours {d.get('ours')}, venue {d.get('venue')}"
            for d in payload.get("discrepancies", ())
            if isinstance(d, Mapping)
        )
    else:
        reason = str(payload.get("reason", payload.get("message", "")))
    trigger = payload.get("trigger", payload.get("name"))
    actor = payload.get("actor")
    return Incident(
        seq=record.seq,
        ts=record.ts,
        type=record.type,
        scope=_scope(record),
        reason=reason,
        trigger=None if trigger is None else str(trigger),
        actor=None if actor is None else str(actor),
    )


def find_incidents(records: Iterable[JournalRecord]) -> list[Incident]:
    """Every halt-like event of ``records``, in sequence order.

    Kill switches, breakers opening, trading states moving to ``halted``/``reducing``,
    strategy failures, execution halts, protection locks, ``*Correction*`` events and
    ``InvariantViolated``.
    """
    return [_incident(record) for record in records if _is_incident(record)]


# -- scopes and strategies --------------------------------------------------------------------
class _Scopes:
    """Relates scopes (``global``, ``strategy:X``, ``engine:E``) through RunStarted's engines."""

    def __init__(self, records: Sequence[JournalRecord]) -> None:
        self.engines: dict[str, set[str]] = {}
        for record in records:
            if record.type != "RunStarted":
                continue
            config = _payload(record).get("config") or {}
            for spec in config.get("strategies") or ():
                name = str(spec.get("name") or spec.get("strategy"))
                engine = str(spec.get("engine") or name)
                self.engines.setdefault(engine, set()).add(name)
            break

    def strategies(self, scope: str) -> frozenset[str] | None:
        """The strategies a scope covers; None for everything (``global`` and the unknown)."""
        kind, _, name = scope.partition(":")
        if kind == "strategy":
            return frozenset({name})
        if kind == "engine":
            return frozenset(self.engines.get(name, set()) | {name})
        return None

    def related(self, record: JournalRecord, scope: str) -> bool:
        """Whether ``record`` concerns ``scope`` (global events concern every scope)."""
        ours = self.strategies(scope)
        if ours is None:
            return True
        payload = _payload(record)
        if record.type == "RiskDecision" or ("strategy" in payload and "scope" not in payload):
            return str(payload.get("strategy")) in ours
        theirs = self.strategies(_scope(record))
        return theirs is None or bool(ours & theirs)


def _resumes(record: JournalRecord, incident: Incident) -> bool:
    """Whether ``record`` resumes trading in the incident's scope."""
    payload = _payload(record)
    same = _scope(record) == incident.scope
    kind = record.type
    if incident.type == "KillSwitchTripped":
        return kind == "KillSwitchReset" and same
    if incident.type == "BreakerStateChanged":
        return kind == "BreakerStateChanged" and same and payload.get("state") == "closed"
    if incident.type == "TradingStateChanged":
        return kind == "TradingStateChanged" and same and payload.get("state") == "active"
    if incident.type == "ExecutionHalted":
        return kind == "ExecutionResumed"
    return same and (
        kind in ("OperatorApproved", "KillSwitchReset", "ExecutionResumed")
        or (kind == "BreakerStateChanged" and payload.get("state") == "closed")
        or (kind == "TradingStateChanged" and payload.get("state") == "active")
    )


def _resumption(records: Sequence[JournalRecord], index: int, incident: Incident) -> Resumption:
    approval: JournalRecord | None = None
    for record in records[index + 1 :]:
        if record.type == "OperatorApproved" and _scope(record) == incident.scope:
            approval = approval or record
        if _resumes(record, incident):
            payload = _payload(record)
            text = str(payload.get("reason") or payload.get("state") or "")
            if payload.get("actor"):
                text += f" (by {payload['actor']})"
            if approval is not None and approval.seq != record.seq:
                text += f"; approved at seq {approval.seq} by {_payload(approval).get('actor')}"
            return Resumption(seq=record.seq, ts=record.ts, type=record.type, text=text)
    if incident.type == "ProtectionLocked":
        until = _payload(records[index]).get("until_ns")
        if isinstance(until, int):
            return Resumption(
                seq=None, ts=until, type=None, text=f"the lock expired at {_iso(until)}"
            )
    if approval is not None:
        return Resumption(
            seq=None,
            ts=None,
            type=None,
            text=f"{STILL_HALTED} (approved at seq {approval.seq}, never reset)",
        )
    return Resumption(seq=None, ts=None, type=None, text=STILL_HALTED)


# -- the chain of reasons ---------------------------------------------------------------------
def _cause_text(record: JournalRecord) -> str:
    incident = _incident(record)
    by = " ".join(part for part in (incident.trigger, incident.actor) if part)
    return f"{incident.scope}{f' ({by})' if by else ''}: {incident.reason}"


def _reasons(
    records: Sequence[JournalRecord], index: int, incident: Incident, scopes: _Scopes
) -> tuple[Reason, ...]:
    """Walk back from the incident to the last time its scope resumed (or the start)."""
    own = Reason(seq=incident.seq, type=incident.type, text=_cause_text(records[index]))
    causes: list[Reason] = []
    earlier = 0
    denials: dict[tuple[str, str], list[int]] = {}
    for record in reversed(records[:index]):
        if _resumes(record, incident) or record.type == "RunStarted":
            break
        if not scopes.related(record, incident.scope):
            continue
        payload = _payload(record)
        if record.type == "RiskDecision":
            if not payload.get("approved", True):
                key = (str(payload.get("check") or "-"), str(payload.get("reason", "")))
                denials.setdefault(key, []).append(record.seq)
        elif _is_incident(record):
            if len(causes) < _MAX_LISTED:
                causes.append(Reason(seq=record.seq, type=record.type, text=_cause_text(record)))
            else:
                earlier += 1
    if earlier:
        causes.append(Reason(seq=None, type="earlier", text=f"{earlier} more halt-like events"))
    counted = [
        Reason(
            seq=min(seqs),
            type="RiskDecision",
            text=f"denied by {check}: {reason}",
            count=len(seqs),
            last_seq=max(seqs),
        )
        for (check, reason), seqs in sorted(denials.items(), key=lambda item: -len(item[1]))
    ]
    return (own, *causes, *counted)


# -- the timeline -----------------------------------------------------------------------------
def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _detail(record: JournalRecord) -> str:
    payload = _payload(record)
    kind = record.type
    if kind == "RiskDecision":
        verdict = "approved" if payload.get("approved") else f"DENIED by {payload.get('check')}"
        fields = f"{payload.get('client_order_id')} {payload.get('strategy')} {verdict}"
        detail = fields if payload.get("approved") else f"{fields}: {payload.get('reason')}"
    elif kind == "OrderSubmitted":
        request = payload.get("request") or {}
        detail = (
            f"{payload.get('client_order_id')} {payload.get('strategy')}"
            f" side={request.get('side')} quantity={request.get('quantity')}"
            f" {request.get('order_type')}"
        )
    elif kind == "AlertRaised":
        alert = payload.get("alert") or {}
        detail = f"{alert.get('kind')} severity={alert.get('severity')}: {alert.get('title')}"
    elif kind in ("RunStarted", "SafetyStatusReported"):
        detail = ""
    else:
        detail = " ".join(
            f"{key}={_short(value)}"
            for key, value in payload.items()
            if key not in ("type", "ts") and not isinstance(value, Mapping)
        )
    return detail if len(detail) <= _LINE else detail[: _LINE - 3] + "..."


def _entry(record: JournalRecord) -> TimelineEntry:
    return TimelineEntry(seq=record.seq, ts=record.ts, type=record.type, detail=_detail(record))


# -- building ---------------------------------------------------------------------------------
def build_postmortems(
    records: Iterable[JournalRecord],
    incidents: Iterable[Incident] | None = None,
    *,
    window: int = 20,
) -> list[PostMortem]:
    """The post-mortem of each incident (default: all of :func:`find_incidents`).

    One replay pass serves every incident's state before and after.
    """
    records = list(records)
    wanted = find_incidents(records) if incidents is None else list(incidents)
    position = {record.seq: index for index, record in enumerate(records)}
    missing = [incident.seq for incident in wanted if incident.seq not in position]
    if missing:
        raise ValueError(f"incidents at seq {missing} are not in these records")
    # States are taken after the record at these indexes (-1: before the first record).
    spans = {
        incident.seq: (
            position[incident.seq] - 1,
            min(position[incident.seq] + window, len(records) - 1),
        )
        for incident in wanted
    }
    needed = {index for span in spans.values() for index in span}
    replayer = JournalReplayer(
        initial_capital=reported_initial_capital(records),
        reversed_trade_ids=reversed_trade_ids(records),
    )
    states: dict[int, ReplayState] = {}
    if -1 in needed:
        states[-1] = replayer.state()
    last = max(needed, default=-1)
    for index, record in enumerate(records[: last + 1]):
        replayer.apply(record)
        if index in needed:
            states[index] = replayer.state()
    scopes = _Scopes(records)
    reports = []
    for incident in wanted:
        index = position[incident.seq]
        before, after = spans[incident.seq]
        timeline = records[max(0, index - window) : after + 1]
        reports.append(
            PostMortem(
                incident=incident,
                reasons=_reasons(records, index, incident, scopes),
                timeline=tuple(_entry(record) for record in timeline),
                state_before=states[before],
                state_after=states[after],
                resumed=_resumption(records, index, incident),
            )
        )
    return reports


def build_postmortem(
    records: Iterable[JournalRecord], incident: Incident, window: int = 20
) -> PostMortem:
    """The post-mortem of ``incident``: ``window`` events either side of it in the timeline.

    >>> records = read_journal("run.sqlite")  # doctest: +SKIP
    >>> build_postmortem(records, find_incidents(records)[0]).to_markdown()  # doctest: +SKIP
    """
    return build_postmortems(records, [incident], window=window)[0]


def write_postmortems(
    records: Iterable[JournalRecord],
    out_dir: str | os.PathLike[str],
    *,
    window: int = 20,
    reports: Sequence[PostMortem] | None = None,
) -> list[Path]:
    """Write ``<seq>-<type>.md`` and ``.json`` per incident and an ``index.md`` to ``out_dir``.

    ``reports`` already built from ``records`` are written as they are. Returns the paths
    written, the index last; the index is written even when nothing halted.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if reports is None:
        reports = build_postmortems(records, window=window)
    index = ["# Post-mortems", ""]
    for report in reports:
        markdown = out / f"{report.name}.md"
        markdown.write_text(report.to_markdown(), encoding="utf-8")
        document = out / f"{report.name}.json"
        document.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
        written += [markdown, document]
        index.append(
            f"- [{report.name}]({markdown.name}) {report.incident.time}: {report.summary()}"
        )
    if not reports:
        index.append("No incidents: nothing halted in this journal.")
    index_path = out / "index.md"
    index_path.write_text("\n".join(index) + "\n", encoding="utf-8")
    written.append(index_path)
    return written
