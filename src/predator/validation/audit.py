"""The audit: recompute everything from the raw journal events and report what disagrees.

Checks the hash chain, the sequence numbers, coverage (fill -> order -> risk decision),
the order state machine, unique venue trade ids and the balance equation to the smallest
money unit (by the replay of ``predator.validation.replay``), then compares recomputed
PnL, fees and counts with RunCompleted's. ``predator audit`` exits 0 only when clean.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from typing import Any

import msgspec

from predator.core.numbers import to_decimal
from predator.ledger.journal import JournalRecord, verify_chain
from predator.validation.replay import (
    JournalReplayer,
    read_journal,
    reported_initial_capital,
    reversed_trade_ids,
)

__all__ = ["CHECKS", "AuditFollower", "AuditReport", "Finding", "audit", "audit_journal"]

CHECKS: dict[str, str] = {
    "chain": "no record edited, reordered, copied or torn (verify_chain over stored bytes)",
    "sequence": "sequence numbers run 1, 2, 3... with none missing or repeated",
    "coverage": "every fill has its order, every order an approved risk decision",
    "order_state": "every order moves only as the order state machine allows",
    "duplicate_fill": "no venue trade id is applied twice",
    "balance": "the balance equation holds to the smallest unit after every fill and transfer",
    "fee": "every fill's fee is the run's commission on it",
    "pnl": "realized PnL and fees recomputed from the fills equal RunCompleted's",
    "counts": "fills, trades and orders recomputed equal RunCompleted's",
    "trading_state": "each trading-state change starts from the state the replay has",
    "kill_switch": "every kill-switch reset follows an operator approval",
    "complete": "the journal starts with RunStarted and ends with RunCompleted",
    "decode": "every payload can be read",
}
"""The audit's checks by name, as they appear in findings."""


class Finding(msgspec.Struct, frozen=True):
    """One thing the audit found wrong: where (``seq``, when known), which check, what."""

    seq: int | None
    check: str
    message: str


class AuditReport(msgspec.Struct, frozen=True, kw_only=True):
    """The audit's verdict: its findings (sorted by seq) and what it recomputed."""

    findings: list[Finding]
    events: int
    first_seq: int | None
    last_seq: int | None
    digest: str
    fills: int
    orders: int
    trades: int
    complete: bool

    @property
    def clean(self) -> bool:
        """True when the audit found nothing."""
        return not self.findings

    @property
    def counts(self) -> dict[str, int]:
        """Number of findings per check (only checks with findings)."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.check] = counts.get(finding.check, 0) + 1
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready builtins, as ``predator audit --json`` prints them."""
        return {
            "clean": self.clean,
            "events": self.events,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "digest": self.digest,
            "fills": self.fills,
            "orders": self.orders,
            "trades": self.trades,
            "complete": self.complete,
            "counts": self.counts,
            "findings": [msgspec.to_builtins(f) for f in self.findings],
        }

    def render(self) -> str:
        """``clean: ...`` on one line, or one line per finding (seq, check, message)."""
        span = f"seq {self.first_seq}..{self.last_seq}" if self.events else "no events"
        summary = (
            f"{self.events} events ({span}), {self.fills} fills, {self.orders} orders,"
            f" {self.trades} trades, digest {self.digest or '-'}"
        )
        if self.clean:
            return f"clean: {summary}"
        lines = [
            f"seq {'-' if f.seq is None else f.seq:>7}  {f.check:<14} {f.message}"
            for f in self.findings
        ]
        by_check = ", ".join(f"{check}: {n}" for check, n in self.counts.items())
        lines.append(f"{len(self.findings)} findings ({by_check}) in {summary}")
        return "\n".join(lines)


def _stored_payload(record: JournalRecord) -> bytes:
    """The payload bytes the chain was computed over.

    The bytes as stored (``raw``) when the record carries them; otherwise the payload
    re-encoded, which gives the same bytes because decoding keeps the key order.
    """
    return record.raw or msgspec.json.encode(record.payload)


_NUMBERING_PROBLEMS = ("missing", "duplicate: seq", "out of range")
"""verify_chain's problems that are about the sequence numbers rather than the hashes."""


def _check_chain(records: list[JournalRecord], findings: list[Finding]) -> None:
    """Tamper evidence by the journal's own :func:`verify_chain`, over the stored bytes."""
    rows = [(r.seq, r.ts, r.type, _stored_payload(r), r.chain) for r in records]
    for found in verify_chain(rows):
        problem = found.problem
        if problem.startswith(_NUMBERING_PROBLEMS):
            findings.append(Finding(found.seq, "sequence", problem))
        else:
            findings.append(
                Finding(found.seq, "chain", f"chain broken at seq {found.seq}: {problem}")
            )


def _check_outcome(
    replayer: JournalReplayer, span: tuple[int, int] | None, findings: list[Finding]
) -> None:
    """Compare the replayed totals with what the journal's RunCompleted reports;
    ``span``: the first and last seq of the records (``None``: there are none)."""
    if span is None:
        findings.append(Finding(None, "complete", "the journal is empty"))
        return
    first, last = span
    if replayer.started_seq is None:
        findings.append(
            Finding(
                first,
                "complete",
                "no RunStarted: the run's instrument and capital are unknown, so no fill can"
                " be replayed into a balance",
            )
        )
    elif replayer.started_seq != first:
        findings.append(Finding(replayer.started_seq, "complete", "RunStarted is not first"))
    portfolios = replayer.portfolios()
    precision = None if replayer.instrument is None else replayer.instrument.money_precision

    def money(units: int) -> str:
        return str(units) if precision is None else f"{to_decimal(units, precision):f}"

    at = last if replayer.completed is None else replayer.completed[0]
    for account, portfolio in portfolios.items():
        imbalance = portfolio.ledger.trial_balance()
        if imbalance:
            findings.append(
                Finding(at, "balance", f"pool {account}: trial balance is {imbalance}, not 0")
            )
    if replayer.completed is None:
        findings.append(
            Finding(
                last,
                "complete",
                f"the journal is incomplete: it ends at seq {last} without RunCompleted",
            )
        )
        return
    seq, reported = replayer.completed
    recomputed: dict[str, tuple[str, int]] = {
        "realized_pnl": ("pnl", sum(p.realized_pnl for p in portfolios.values())),
        "fees": ("pnl", sum(p.fees for p in portfolios.values())),
        "fills": ("counts", replayer.fills),
        "trades": ("counts", sum(len(p.closed_trades) for p in portfolios.values())),
        "orders": ("counts", len(replayer.orders)),
        "initial_capital": ("balance", sum(p.initial_cash for p in portfolios.values())),
    }
    if all(not p.position_quantity(s) for p in portfolios.values() for s in p.positions):
        # Flat at the end: equity is cash, to the unit (open positions need marks).
        recomputed["final_equity"] = ("balance", sum(p.cash for p in portfolios.values()))
    for field, (check, ours) in recomputed.items():
        theirs = reported.get(field)
        if not isinstance(theirs, int) or isinstance(theirs, bool) or theirs == ours:
            continue
        is_money = check != "counts"
        shown = (money(ours), money(theirs)) if is_money else (str(ours), str(theirs))
        findings.append(
            Finding(
                seq,
                check,
                f"{field} recomputed from the journal is {shown[0]}, RunCompleted reports"
                f" {shown[1]}",
            )
        )


def audit(
    records: Iterable[JournalRecord],
    *,
    chain_verified: bool = False,
    unmade_fills: Collection[str] = (),
) -> AuditReport:
    """Recompute everything from journal ``records`` (in sequence order) and report.

    ``chain_verified``: the caller has just verified these records' chain and sequence
    numbers over the stored bytes (recovery's :func:`~predator.node.load_durable` does), so
    the audit does not walk the chain a second time. ``unmade_fills``: trade ids of
    journaled fills the venue never made, about to be reversed (crash recovery, before its
    reconciliation journals the ``FillReversed``): not fee-checked, like reversed ones.

    >>> report = audit(Journal("run.sqlite").records())  # doctest: +SKIP
    >>> report.clean, [(f.seq, f.check) for f in report.findings]  # doctest: +SKIP
    """
    records = list(records)
    findings: list[Finding] = []
    if not chain_verified:
        _check_chain(records, findings)

    def found(seq: int | None, check: str, message: str) -> None:
        findings.append(Finding(seq, check, message))

    replayer = JournalReplayer(
        initial_capital=reported_initial_capital(records),
        on_anomaly=found,
        reversed_trade_ids=reversed_trade_ids(records) | frozenset(unmade_fills),
    )
    for record in records:
        replayer.apply(record)
    replayer.kill_switch()  # reports resets without approval
    _check_outcome(replayer, (records[0].seq, records[-1].seq) if records else None, findings)
    findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
    trades = sum(len(p.closed_trades) for p in replayer.portfolios().values())
    return AuditReport(
        findings=findings,
        events=len(records),
        first_seq=records[0].seq if records else None,
        last_seq=records[-1].seq if records else None,
        digest=records[-1].chain.hex() if records else "",
        fills=replayer.fills,
        orders=len(replayer.orders),
        trades=trades,
        complete=replayer.completed is not None,
    )


def audit_journal(target: str | os.PathLike[str]) -> AuditReport:
    """:func:`audit` of the journal at ``target`` (an SQLite path or a journal URL).

    A missing file or anything that is not a journal raises ``JournalUnreadable``.
    """
    return audit(read_journal(target))


class AuditFollower:
    """The audit of a growing journal, kept up to date record by record.

    :func:`audit` recomputes everything from the first record; a node supervisor that
    restarts its node many times (a campaign) audits each durable record once instead:
    :meth:`feed` the records in order as they become durable, ask :meth:`findings`. The
    checks are :func:`audit`'s, but the chain is the caller's to verify (recovery's
    incremental read does) and a fill is fee-checked when it arrives: a fee finding is
    withdrawn when a later ``FillReversed`` undoes that fill, or when the caller names
    it among the fills the venue never made (``unmade_fills``).
    """

    def __init__(self) -> None:
        self._findings: list[Finding] = []
        self._fee_by_seq: dict[int, int] = {}
        """Seq of a fill -> index of its fee finding in ``_findings``."""
        self._withdrawn: set[int] = set()
        self.replayer = JournalReplayer(on_anomaly=self._found)
        self.first_seq: int | None = None
        self.last_seq = 0

    def _found(self, seq: int | None, check: str, message: str) -> None:
        if check == "fee" and seq is not None:
            self._fee_by_seq[seq] = len(self._findings)
        self._findings.append(Finding(seq, check, message))

    def feed(self, records: Iterable[JournalRecord]) -> None:
        """Audit ``records``, the ones after the last fed, in sequence order."""
        replayer = self.replayer
        for record in records:
            if self.first_seq is None:
                self.first_seq = record.seq
            self.last_seq = record.seq
            if record.type == "FillReversed" and isinstance(record.payload, dict):
                fill_seq = replayer.trade_ids.get(str(record.payload.get("trade_id")))
                if fill_seq is not None and fill_seq in self._fee_by_seq:
                    self._withdrawn.add(self._fee_by_seq.pop(fill_seq))
            replayer.apply(record)

    def findings(self, *, unmade_fills: Collection[str] = ()) -> list[Finding]:
        """What :func:`audit` of every record fed so far would find (sorted by seq)."""
        withdrawn = set(self._withdrawn)
        for trade_id in unmade_fills:
            fill_seq = self.replayer.trade_ids.get(trade_id)
            if fill_seq is not None and fill_seq in self._fee_by_seq:
                withdrawn.add(self._fee_by_seq[fill_seq])
        found = [f for i, f in enumerate(self._findings) if i not in withdrawn]
        replayer = self.replayer

        def also(seq: int | None, check: str, message: str) -> None:
            found.append(Finding(seq, check, message))

        # The end-of-run checks read the state; their findings are this answer's only.
        replayer.set_anomaly_handler(also)
        try:
            replayer.kill_switch(rebuild=True)  # reports resets without approval
        finally:
            replayer.set_anomaly_handler(self._found)
        span = None if self.first_seq is None else (self.first_seq, self.last_seq)
        _check_outcome(replayer, span, found)
        found.sort(key=lambda f: (f.seq is None, f.seq or 0))
        return found
