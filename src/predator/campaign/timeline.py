"""One pass over a campaign's journal: who could trade when, and every order approved.

The metrics and the gates read the same facts, so they are extracted once, in journal
order: kill-switch trips and resets per scope, execution halts, global trading-state
halts, node crashes and restarts, strategy stops and restarts, invalid market data, and
each approved order with the control state it was approved in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from predator.ledger.journal import JournalRecord

__all__ = ["Approval", "Halt", "Timeline", "read_timeline"]


@dataclass(slots=True)
class Halt:
    """One halt: what (``kind``), of which scope, from when to when (``end`` None: never
    resumed), why and by whom; ``resumed_by`` is the actor of the resumption."""

    kind: str
    """``kill_switch``, ``execution``, ``trading_state``, ``crash`` or ``strategy``."""
    scope: str
    start: int
    seq: int
    reason: str
    actor: str
    trigger: str = ""
    end: int | None = None
    resumed_by: str | None = None

    @property
    def global_(self) -> bool:
        """Whether it stops all trading (not one engine or strategy)."""
        return self.scope == "global"


@dataclass(slots=True)
class Approval:
    """An order the risk engine approved, with the control state at that moment."""

    seq: int
    ts: int
    strategy: str
    client_order_id: str
    blocked: str | None
    """Why it should not have passed (a tripped scope, a halt, a dead strategy)."""
    invalid_data: str | None
    submitted: bool = False
    reducing: bool = False


@dataclass(slots=True)
class Timeline:
    """Everything :func:`read_timeline` extracts (see the module docstring)."""

    engines: dict[str, str] = field(default_factory=dict)
    halts: list[Halt] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    discrepancies: int = 0
    unexplained: list[str] = field(default_factory=list)
    """Halts journaled without a reason or an actor."""
    deaths: list[tuple[int, str, str]] = field(default_factory=list)
    """``(ts, strategy, reason)`` of each strategy stopped by its own kill switch or a raise."""
    first_ts: int | None = None
    last_ts: int | None = None


def _explained(text: Any) -> bool:
    return (
        isinstance(text, str)
        and bool(text.strip())
        and text.strip()
        not in (
            "no reason given",
            "unknown",
        )
    )


def read_timeline(records: Iterable[JournalRecord]) -> Timeline:
    """The campaign facts of ``records`` (see :class:`Timeline`)."""
    out = Timeline()
    open_halts: dict[tuple[str, str], Halt] = {}
    stopped: dict[str, str] = {}
    invalid: dict[str, str] = {}
    by_id: dict[str, Approval] = {}
    counts = out.counts

    def start(halt: Halt) -> None:
        key = (halt.kind, halt.scope)
        if key not in open_halts:
            open_halts[key] = halt
            out.halts.append(halt)

    def end(kind: str, scope: str, ts: int, actor: str) -> None:
        halt = open_halts.pop((kind, scope), None)
        if halt is not None:
            halt.end, halt.resumed_by = ts, actor

    for record in records:
        kind, payload, ts = record.type, record.payload, record.ts
        counts[kind] = counts.get(kind, 0) + 1
        if out.first_ts is None:
            out.first_ts = ts
        out.last_ts = ts
        if kind == "RunStarted" and not out.engines:
            for spec in payload.get("config", {}).get("strategies", ()):
                name = str(spec.get("name") or spec.get("strategy"))
                out.engines[name] = str(spec.get("engine") or name)
        elif kind == "KillSwitchTripped":
            reason, actor = payload.get("reason"), payload.get("actor")
            if not (_explained(reason) and _explained(actor)):
                out.unexplained.append(f"seq {record.seq}: kill switch {payload.get('scope')}")
            start(
                Halt(
                    "kill_switch", str(payload["scope"]), ts, record.seq, str(reason),
                    str(actor), trigger=str(payload.get("trigger", "")),
                )
            )  # fmt: skip
        elif kind == "KillSwitchReset":
            end("kill_switch", str(payload["scope"]), ts, str(payload.get("actor")))
        elif kind == "ExecutionHalted":
            if not _explained(payload.get("reason")):
                out.unexplained.append(f"seq {record.seq}: execution halt")
            start(
                Halt("execution", "global", ts, record.seq, str(payload.get("reason")), "execution")
            )
        elif kind == "ExecutionResumed":
            end("execution", "global", ts, str(payload.get("actor")))
        elif kind == "TradingStateChanged":
            scope = str(payload.get("scope", "global"))
            if payload.get("state") == "halted":
                if not (_explained(payload.get("reason")) and _explained(payload.get("actor"))):
                    out.unexplained.append(f"seq {record.seq}: trading state {scope}")
                start(
                    Halt("trading_state", scope, ts, record.seq, str(payload.get("reason")),
                         str(payload.get("actor")))
                )  # fmt: skip
            else:
                end("trading_state", scope, ts, str(payload.get("actor")))
        elif kind == "NodeCrashed":
            crashed = int(payload["crashed_at"])
            halt = Halt("crash", "global", crashed, record.seq, str(payload["reason"]), "chaos")
            out.halts.append(halt)
            open_halts[("crash", "global")] = halt
        elif kind == "NodeRestarted":
            end("crash", "global", ts, str(payload.get("actor")))
        elif kind == "StrategyStopped":
            name, reason = str(payload["strategy"]), str(payload.get("reason"))
            if not _explained(reason):
                out.unexplained.append(f"seq {record.seq}: strategy {name} stopped")
            stopped[name] = reason
            start(Halt("strategy", f"strategy:{name}", ts, record.seq, reason, "system"))
            if reason.startswith("raised in") or reason == f"kill switch strategy:{name}":
                out.deaths.append((ts, name, reason))
        elif kind == "StrategyRestarted":
            name = str(payload["strategy"])
            stopped.pop(name, None)
            end("strategy", f"strategy:{name}", ts, str(payload.get("actor")))
        elif kind == "MarketDataInvalidated":
            invalid[str(payload["symbol"])] = str(payload.get("reason"))
        elif kind == "MarketDataRestored":
            invalid.pop(str(payload["symbol"]), None)
        elif kind == "ReconciliationMismatch":
            out.discrepancies += len(payload.get("discrepancies", ()))
        elif kind == "RiskDecision":
            if not payload.get("approved") or payload.get("check") == "resent":
                continue
            name = str(payload["strategy"])
            engine = out.engines.get(name, name)
            blocked = None
            for scope in ("global", f"engine:{engine}", f"strategy:{name}"):
                if ("kill_switch", scope) in open_halts:
                    blocked = f"{scope} kill switch tripped"
                    break
                if ("trading_state", scope) in open_halts:
                    blocked = f"{scope} trading halted"
                    break
            if blocked is None and name in stopped:
                blocked = f"strategy {name} stopped ({stopped[name]})"
            approval = Approval(
                record.seq, ts, name, str(payload["client_order_id"]), blocked,
                next(iter(invalid.values()), None),
            )  # fmt: skip
            out.approvals.append(approval)
            by_id[approval.client_order_id] = approval
        elif kind == "OrderSubmitted":
            found = by_id.get(str(payload.get("client_order_id")))
            if found is not None:
                request = payload.get("request", {})
                found.submitted = True
                found.reducing = bool(request.get("reduce_only") or request.get("close_position"))
    return out
