"""Crash recovery: rebuild a fresh kernel from the durable journal, then ask the venue.

A crash loses everything not yet durable: the unflushed journal tail and all in-memory
state. The venue keeps running. Recovery, in two steps:

1. :func:`load_durable` reads what the store holds, checks the chain, discards a torn
   last record (a partial write: ``truncate_after``) and refuses any other break.
2. :func:`recover` rebuilds a freshly built kernel (same config) from those records:
   every journaled ``OrderFilled`` and ``CapitalTransferred`` re-applied exactly once,
   directly to the portfolios (not through the bus, so nothing is journaled twice),
   execution's orders with their statuses and trade ids, the risk engine's pending
   orders. It re-connects the venue that kept running to the new kernel, adopts the
   orders the venue knows whose ``OrderSubmitted`` was lost (journaled as
   :class:`OrderAdopted`), and lets
   :class:`~predator.validation.reconciliation.Reconciliation` apply the venue fills since
   the last journaled venue trade exactly once (``FillRecovered`` journaled), and the
   venue transfers the journal lost (``CapitalTransferred`` journaled by reconciliation).

With a snapshot (:mod:`predator.node.snapshot`) the rebuild starts from the newest one the
durable journal covers and replays only the records after it; without one, from the
start. Kill switches, trading states, execution halts, stopped strategies and breakers are
restored too (exactly from a snapshot, from their journaled changes after it), and
:func:`~predator.node.resume.resume_run` (module ``resume``) rebuilds the equity curve of the
bars it re-warms from the fills.
Not restored: strategy internals (re-warmed from the bars) and protection windows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from predator.core.events import Event
from predator.execution.order import (
    FillReversed,
    InvalidTransition,
    Order,
    OrderFilled,
    OrderStatus,
    undo_fill,
)
from predator.ledger.journal import GENESIS, JournalCorrupted, JournalRecord, verify_chain
from predator.ledger.stores import JournalStore
from predator.node.resume import _RebuiltEquity, prepare_resume, rebuild_history, resume_run
from predator.node.snapshot import (
    CONTROL_EVENTS,
    KernelSnapshot,
    SnapshotMismatch,
    apply_control,
    decode_snapshot,
    restore_snapshot,
)
from predator.portfolio.transfers import CapitalTransferred, TransferInvalid, apply_transfer
from predator.risk.risk_engine import MINUTE_NS
from predator.validation.audit import AuditFollower, Finding, audit
from predator.venue.orders import OrderRequest, Side, VenueOrderFilled
from predator.venue.paper_exchange import PaperExchange

if TYPE_CHECKING:
    from predator.node.kernel import Kernel

__all__ = [
    "DurableJournal",
    "DurableReader",
    "OrderAdopted",
    "RecoveryRefused",
    "RecoveryReport",
    "load_durable",
    "prepare_resume",
    "rebuild_history",
    "recover",
    "refuse_unaudited",
    "resume_run",
]


class RecoveryRefused(RuntimeError):
    """The journal cannot be trusted (a break other than a torn last record)."""


class OrderAdopted(Event, frozen=True, kw_only=True):
    """An order the venue knows whose ``OrderSubmitted`` was lost with the journal tail.

    ``venue_status`` is the venue's answer: ``open`` (resting) or ``filled`` (it has
    trades in the venue log; the fills follow as ``FillRecovered``).
    """

    client_order_id: str
    strategy: str
    request: OrderRequest
    venue_status: str
    reason: str


class DurableJournal(msgspec.Struct, frozen=True, kw_only=True):
    """What survived a crash: the durable records and what was discarded from the tail."""

    records: tuple[JournalRecord, ...]
    durable_seq: int
    """Sequence number of the last record kept (0 for an empty journal)."""
    discarded_tail: tuple[int, ...] = ()
    """Sequence numbers of torn records discarded (at most the last one)."""
    snapshot: KernelSnapshot | None = None
    """The newest snapshot the durable records cover, checked against their chain."""
    snapshot_problem: str | None = None
    """Why a stored snapshot was not used (recovery then replays from the start)."""


class RecoveryReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`recover` rebuilt, recovered and adopted, and whether it reconciled."""

    durable_seq: int
    discarded_tail: tuple[int, ...]
    fills_replayed: int
    """Journaled fills re-applied to the portfolios (each trade id once)."""
    snapshot_seq: int = 0
    """Seq of the snapshot the rebuild started from (0: replayed from the start)."""
    records_replayed: int = 0
    """Durable records replayed on top of the snapshot (all of them without one)."""
    fills_recovered: int
    """Venue fills missing from the journal, applied through reconciliation."""
    adopted_orders: tuple[str, ...]
    """Client order ids known to the venue whose ``OrderSubmitted`` was lost."""
    venue_trade_seq: int
    """The venue trade sequence recovery asked fills since."""
    duplicate_fills: int = 0
    """Journaled fills whose trade id was already applied (skipped)."""
    transfers_replayed: int = 0
    """Journaled capital transfers re-applied to the pools (each transfer id once)."""
    transfers_recovered: int = 0
    """Venue transfers missing from the journal, applied through reconciliation."""
    mismatches: tuple[str, ...] = ()
    """Unexplained differences left after recovery (each trips the kill switch)."""
    reconciled: bool = False
    completed: bool = False
    """The durable journal already ends with ``RunCompleted``: nothing is left to run."""
    """True when the rebuilt state matches the venue: trading may resume."""


# -- step 1: what is durable ------------------------------------------------------------
def load_durable(store: JournalStore) -> DurableJournal:
    """The durable records of ``store``; a torn last record is truncated and reported.

    Call it before opening the journal the recovered kernel appends to (a
    :class:`~predator.ledger.journal.Journal` reads its tail when it opens). Raises
    :class:`RecoveryRefused` on any other chain break: recovery never guesses.
    """
    return DurableReader().load(store)


class DurableReader:
    """:func:`load_durable` for a supervisor that restarts one node many times.

    It keeps the records it has read and verified, and the chain value of the last: each
    :meth:`load` reads, verifies (from that anchor) and decodes only the rows after it,
    and feeds them to an :class:`~predator.validation.audit.AuditFollower`, so
    :meth:`refuse_unaudited` costs what is new, not the whole journal. A store never
    loses a committed row (a crash loses only what was never committed; a torn last row
    is never accepted), so what was verified stays verified.
    """

    def __init__(self) -> None:
        self.records: list[JournalRecord] = []
        self.auditor = AuditFollower()
        self._seq = 0
        self._chain = GENESIS

    def load(self, store: JournalStore) -> DurableJournal:
        """The durable journal of ``store`` (see :func:`load_durable`)."""
        rows = list(store.read(self._seq + 1))
        breaks = verify_chain(rows, after_seq=self._seq, after_chain=self._chain)
        discarded: list[int] = []
        if breaks:
            last_seq = rows[-1][0] if rows else self._seq
            torn = breaks[-1]
            if torn.seq == last_seq and torn.problem.startswith("torn") and len(breaks) == 1:
                store.truncate_after(last_seq - 1)
                discarded.append(last_seq)
                rows = rows[:-1]
            else:
                found = "; ".join(str(b) for b in breaks[:3])
                raise RecoveryRefused(
                    f"journal fails its chain check, refusing to recover: {found}"
                )
        decode = msgspec.json.decode
        fresh: list[JournalRecord] = []
        for seq, ts, type_name, raw, chain in rows:
            try:
                payload = decode(raw)
            except msgspec.DecodeError as exc:  # pragma: no cover - verify_chain reports it
                raise JournalCorrupted(seq, f"payload does not decode ({exc})") from None
            fresh.append(JournalRecord(seq, ts, type_name, payload, chain, raw))
        if fresh:
            self._seq, self._chain = fresh[-1].seq, fresh[-1].chain
            self.records.extend(fresh)
            self.auditor.feed(fresh)
        records = self.records
        snapshot, problem = _durable_snapshot(store, records)
        return DurableJournal(
            records=tuple(records),
            durable_seq=self._seq,
            discarded_tail=tuple(discarded),
            snapshot=snapshot,
            snapshot_problem=problem,
        )

    def refuse_unaudited(self, *, venue_trades: Collection[str] | None = None) -> None:
        """:func:`refuse_unaudited` of every record loaded so far, from the running audit."""
        unmade: set[str] = set()
        if venue_trades is not None:
            unmade = set(self.auditor.replayer.trade_ids) - set(venue_trades)
        _refuse(self.auditor.findings(unmade_fills=unmade))


def _durable_snapshot(
    store: JournalStore, records: Sequence[JournalRecord]
) -> tuple[KernelSnapshot | None, str | None]:
    """The newest stored snapshot the durable ``records`` cover, if it belongs to them."""
    durable = records[-1].seq if records else 0
    stored = store.latest_snapshot(durable)
    if stored is None or stored[0] == 0:
        return None, None
    seq, chain, payload = stored
    first = records[0].seq if records else 1
    if not first <= seq <= durable or records[seq - first].chain != chain:
        return None, f"snapshot at seq {seq} does not match the journal's chain there"
    try:
        snapshot = decode_snapshot(payload)
    except SnapshotMismatch as exc:
        return None, f"snapshot at seq {seq}: {exc}"
    if snapshot.seq != seq:
        return None, f"snapshot stored at seq {seq} says it was taken at seq {snapshot.seq}"
    return snapshot, None


# -- step 2: rebuild ----------------------------------------------------------------------
def _trade_number(trade_id: str) -> int | None:
    """``n`` of a venue trade id ``T<n>`` (None for another format)."""
    if trade_id.startswith("T") and trade_id[1:].isdigit():
        return int(trade_id[1:])
    return None


def _move(order: Order, target: OrderStatus, seq: int) -> None:
    try:
        order.transition(target)
    except InvalidTransition as exc:
        raise RecoveryRefused(f"journal seq {seq}: {exc}") from None


class _Rebuild:
    """Replays durable records into a fresh kernel's execution, portfolios and risk."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.approved: dict[str, str] = {}
        self.applied: set[str] = set()
        self.fills = 0
        self.duplicates = 0
        self.transfers = 0
        self.transfer_ids: set[str] = set()
        """Every transfer id the durable journal holds (before a snapshot too)."""
        self.timeline: list[tuple[int, str, int, int]] = []
        """``(ts, pool, cash, position)`` after each fill applied: the equity curve of
        re-warmed bars is rebuilt from it."""

    def apply(self, record: JournalRecord) -> None:
        payload: dict[str, Any] = record.payload
        kind = record.type
        if kind == "CapitalTransferred":
            self._transfer(record)
            return
        if kind == "RiskDecision":
            if payload.get("approved"):
                self.approved[payload["client_order_id"]] = payload["strategy"]
            return
        orders = self.kernel.execution.orders
        if kind == "OrderSubmitted":
            request = msgspec.convert(payload["request"], OrderRequest)
            order = Order(request, payload["strategy"])
            _move(order, OrderStatus.SUBMITTED, record.seq)
            orders[request.client_order_id] = order
            return
        if kind == "OrderAdopted":
            # Adopted after an earlier crash: the adoption stands for its decision and
            # submission (both were lost with that crash's tail).
            request = msgspec.convert(payload["request"], OrderRequest)
            if request.client_order_id in orders:
                return
            strategy = str(payload["strategy"])
            order = Order(request, strategy)
            _move(order, OrderStatus.SUBMITTED, record.seq)
            if payload.get("venue_status") == "open":
                _move(order, OrderStatus.ACCEPTED, record.seq)
            orders[request.client_order_id] = order
            self.approved[request.client_order_id] = strategy
            return
        order_ = orders.get(payload.get("client_order_id", ""))
        if order_ is None:
            if kind == "OrderRejected":
                self._refused(payload, record.seq)
            return
        if kind == "OrderAccepted":
            if order_.status in (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN):
                order_.venue_order_id = payload["venue_order_id"]
                _move(order_, OrderStatus.ACCEPTED, record.seq)
        elif kind == "OrderFilled":
            self._fill(order_, msgspec.convert(payload, OrderFilled), record.seq)
        elif kind == "FillReversed":
            self._reverse(order_, msgspec.convert(payload, FillReversed), record.seq)
        elif kind == "OrderCanceled":
            if order_.is_open:
                _move(order_, OrderStatus.CANCELED, record.seq)
        elif kind == "OrderRejected" and order_.is_open:
            _move(order_, OrderStatus.REJECTED, record.seq)

    def _refused(self, payload: dict[str, Any], seq: int) -> None:
        """An approved intent execution refused to send (it was halted): it never reached
        the venue, but it is one of the run's orders (terminal, REJECTED), as the audit
        and ``RunCompleted`` count it. Its request was not journaled: a placeholder of the
        run's instrument stands in, never sent."""
        strategy = str(payload["strategy"])
        account = next(
            (slot.account for slot in self.kernel.slots if slot.name == strategy), "main"
        )
        request = OrderRequest(
            client_order_id=str(payload["client_order_id"]),
            symbol=self.kernel.instrument.symbol,
            side=Side.BUY,
            quantity=0,
            account=account,
        )
        order = Order(request, strategy)
        _move(order, OrderStatus.REJECTED, seq)
        self.kernel.execution.orders[request.client_order_id] = order

    def _fill(self, order: Order, fill: OrderFilled, seq: int) -> None:
        if fill.trade_id in self.applied:
            self.duplicates += 1
            return
        self.applied.add(fill.trade_id)
        order.trade_ids.add(fill.trade_id)
        order.filled_quantity += fill.quantity
        order.fees += fill.fee
        done = fill.leaves_quantity == 0
        _move(order, OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, seq)
        for name, portfolio in self.kernel.portfolios.items():
            portfolio.apply_fill(fill)  # directly: nothing is published, nothing re-journaled
            if portfolio.account == fill.account:
                quantity = portfolio.position_quantity(fill.symbol)
                self.timeline.append((fill.ts, name, portfolio.cash, quantity))
        self.fills += 1

    def _reverse(self, order: Order, event: FillReversed, seq: int) -> None:
        """A journaled reversal: the fill leaves the order, its pool and the counts (also
        when the fill is before the snapshot: the pool's checkpoint came with it)."""
        if event.trade_id not in self.applied:
            return  # reversed before the snapshot already
        self.applied.discard(event.trade_id)
        undo_fill(order, event)
        for name, portfolio in self.kernel.portfolios.items():
            if portfolio.account != event.account:
                continue
            if not portfolio.applied_since_checkpoint(event.trade_id):
                raise RecoveryRefused(
                    f"journal seq {seq}: fill {event.trade_id} is reversed, but pool"
                    f" {portfolio.account} cannot undo it"
                )
            portfolio.reverse_fill(event.trade_id)
            quantity = portfolio.position_quantity(event.symbol)
            self.timeline.append((event.ts, name, portfolio.cash, quantity))
        self.fills -= 1

    def _transfer(self, record: JournalRecord) -> None:
        """A journaled capital transfer, re-applied to both pools and the ledger."""
        payload = {**record.payload, "type": record.type}
        try:
            event = msgspec.convert(payload, CapitalTransferred)
        except msgspec.ValidationError as exc:
            raise RecoveryRefused(f"journal seq {record.seq}: malformed transfer: {exc}") from None
        if event.transfer_id in self.transfer_ids:
            return
        self.transfer_ids.add(event.transfer_id)
        pools = {p.account: (name, p) for name, p in self.kernel.portfolios.items()}
        source, target = pools.get(event.from_pool), pools.get(event.to_pool)
        if source is None or target is None:
            raise RecoveryRefused(
                f"journal seq {record.seq}: transfer {event.transfer_id} names a pool this"
                " kernel does not have"
            )
        try:
            apply_transfer(event, source[1], target[1])
        except TransferInvalid as exc:
            raise RecoveryRefused(f"journal seq {record.seq}: {exc}") from None
        symbol = self.kernel.instrument.symbol
        for name, portfolio in (source, target):
            quantity = portfolio.position_quantity(symbol)
            self.timeline.append((event.ts, name, portfolio.cash, quantity))
        self.transfers += 1

    def record_recovered(self, fill: OrderFilled) -> None:
        """A fill reconciliation recovered (already applied through the bus)."""
        for name, portfolio in self.kernel.portfolios.items():
            if portfolio.account == fill.account:
                quantity = portfolio.position_quantity(fill.symbol)
                self.timeline.append((fill.ts, name, portfolio.cash, quantity))


def _check_venue(kernel: Kernel, exchange: PaperExchange) -> None:
    """The fresh kernel must be built around the venue that kept running."""
    if kernel.exchange is not exchange:
        raise RecoveryRefused(
            "build the recovering kernel with the surviving venue (Kernel(exchange=...))"
        )


def _strategy_for(kernel: Kernel, account: str) -> str:
    for slot in kernel.slots:
        if slot.account == account:
            return slot.name
    raise RecoveryRefused(f"the venue has an order for account {account!r}, no pool trades it")


def _adopt(
    kernel: Kernel, exchange: PaperExchange, missing: Sequence[VenueOrderFilled]
) -> list[str]:
    """Adopt venue orders (resting, or with fills we lack) that execution never saw."""
    orders = kernel.execution.orders
    adopted: list[str] = []
    found: dict[str, tuple[OrderRequest, str]] = {}
    for request in exchange.open_orders():
        if request.client_order_id not in orders:
            found.setdefault(request.client_order_id, (request, "open"))
    for fill in missing:
        if fill.client_order_id not in orders and fill.client_order_id not in found:
            request = OrderRequest(
                client_order_id=fill.client_order_id,
                symbol=fill.symbol,
                side=fill.side,
                quantity=fill.order_quantity,
                account=fill.account,
            )
            found[fill.client_order_id] = (request, "filled")
    for client_order_id, (request, venue_status) in found.items():
        strategy = _strategy_for(kernel, request.account)
        kernel.bus.publish(
            OrderAdopted(
                ts=kernel.clock.now_ns(),
                client_order_id=client_order_id,
                strategy=strategy,
                request=request,
                venue_status=venue_status,
                reason="known to the venue; its OrderSubmitted was lost in the crash",
            )
        )
        order = Order(request, strategy)
        order.transition(OrderStatus.SUBMITTED)
        if venue_status == "open":
            order.transition(OrderStatus.ACCEPTED)
        orders[client_order_id] = order
        adopted.append(client_order_id)
    return adopted


def _restore_open_orders(kernel: Kernel, approved: dict[str, str]) -> None:
    """Execution's open set and the risk engine's pending exposure, from the orders."""
    execution, risk = kernel.execution, kernel.risk
    risk.restore_seen(execution.orders)
    for client_order_id, order in list(execution.orders.items()):
        if not order.is_open:
            continue
        execution.restore(order)
        strategy = approved.get(client_order_id, order.strategy)
        risk.restore_order(strategy, order.request, open_=True, filled=order.filled_quantity)
    for name, record in risk.strategies.items():
        record.trades_seen = len(kernel.portfolios[name].closed_trades)


def _asked_since(applied: Iterable[str]) -> int:
    """The venue sequence to ask fills since: the highest ``T<n>`` applied, or before a gap."""
    numbers = sorted(n for n in map(_trade_number, applied) if n is not None)
    for expected, number in enumerate(numbers, 1):
        if number != expected:
            return expected - 1  # a journaled gap: ask from it (applied ones are skipped)
    return numbers[-1] if numbers else 0


def refuse_unaudited(
    records: Sequence[JournalRecord],
    *,
    chain_verified: bool = False,
    venue_trades: Collection[str] | None = None,
) -> None:
    """The node never trades on a journal that fails the audit: it stops and says why.

    ``venue_trades``: every trade id the venue made. A journaled fill not among them (the
    node crashed between a ghost fill and its reversal) is not fee-checked: recovery's
    reconciliation reverses it and journals why.
    """
    unmade: set[str] = set()
    if venue_trades is not None:
        unmade = {
            str(record.payload.get("trade_id"))
            for record in records
            if record.type == "OrderFilled" and isinstance(record.payload, dict)
        } - set(venue_trades)
    _refuse(audit(records, chain_verified=chain_verified, unmade_fills=unmade).findings)


def _refuse(findings: Sequence[Finding]) -> None:
    # A crashed journal has no RunCompleted: that one finding is its nature, not damage.
    findings = [
        finding
        for finding in findings
        if not (
            finding.check == "complete"
            and ("incomplete" in finding.message or "is empty" in finding.message)
        )
    ]
    if findings:
        first = findings[0]
        raise RecoveryRefused(
            f"the journal fails the audit ({len(findings)} findings; first at seq "
            f"{first.seq}: {first.check}: {first.message}); run `predator audit` and "
            "resolve it before trading"
        )


def recover(
    records: DurableJournal | Iterable[JournalRecord],
    *,
    exchange: PaperExchange,
    kernel: Kernel,
    audited: bool = False,
) -> RecoveryReport:
    """Rebuild ``kernel`` (freshly built, same config) from durable records and the venue.

    ``exchange`` is the venue that kept running after the crash; it replaces the one the
    fresh kernel built. Set ``kernel.clock`` to the recovery time first: corrections are
    stamped with it. Returns the report; ``reconciled`` says whether trading may resume
    (otherwise reconciliation has tripped the global kill switch). The records must pass
    the audit first (:class:`RecoveryRefused` otherwise); ``audited=True`` says the caller
    has just run :func:`refuse_unaudited` on them itself.
    """
    if isinstance(records, DurableJournal):
        durable = records
    else:
        listed = tuple(records)
        durable = DurableJournal(records=listed, durable_seq=listed[-1].seq if listed else 0)
    if not audited:
        refuse_unaudited(
            durable.records,
            chain_verified=isinstance(records, DurableJournal),
            venue_trades={fill.trade_id for fill in exchange.trade_log},
        )
    _check_venue(kernel, exchange)
    rebuild = _Rebuild(kernel)
    snapshot = durable.snapshot
    tail: Sequence[JournalRecord] = durable.records
    if snapshot is not None:
        rebuild.applied = restore_snapshot(kernel, snapshot)
        rebuild.approved = dict(snapshot.approved)
        first = durable.records[0].seq if durable.records else 1
        tail = durable.records[snapshot.seq - first + 1 :]
        rebuild.transfer_ids.update(
            _transfer_ids(durable.records[: len(durable.records) - len(tail)])
        )
    for record in tail:
        rebuild.apply(record)
    apply_control(kernel, _control_events(tail))
    _stop_killed_strategies(kernel)
    _restore_rate_windows(kernel, durable.records)
    for portfolio in kernel.portfolios.values():
        portfolio.check_balance_equation()
    kernel.fills += rebuild.fills  # the run's fill count spans the restart
    since = _asked_since(rebuild.applied)
    missing = [f for f in exchange.fills_since(since) if f.trade_id not in rebuild.applied]
    adopted = _adopt(kernel, exchange, missing)
    _restore_open_orders(kernel, rebuild.approved)
    reconciliation = kernel.reconciliation
    # Fills applied since the last checkpoint that the venue never made (a crash came
    # between a ghost fill and its reversal) are checked again, so they are reversed.
    venue_trades = {fill.trade_id for fill in exchange.trade_log}
    unverified = {
        fill.trade_id: fill
        for portfolio in kernel.portfolios.values()
        for fill in portfolio.fills_since_checkpoint()
        if fill.trade_id not in venue_trades
    }
    reconciliation.resume_from(since, rebuild.applied - set(unverified), rebuild.transfer_ids)
    reconciliation.verify_applied(unverified.values())
    kernel.sync_pnl_capital()
    if kernel.consistency is not None:  # it starts from the rebuilt state
        kernel.consistency.resync()
    kernel.bus.subscribe(OrderFilled, rebuild.record_recovered)
    try:
        result = reconciliation.check()
    finally:
        kernel.bus.unsubscribe(OrderFilled, rebuild.record_recovered)
    kernel.rebuilt_equity = _RebuiltEquity(kernel, snapshot, rebuild.timeline)
    return RecoveryReport(
        snapshot_seq=0 if snapshot is None else snapshot.seq,
        records_replayed=len(tail),
        durable_seq=durable.durable_seq,
        discarded_tail=durable.discarded_tail,
        fills_replayed=rebuild.fills,
        completed=any(record.type == "RunCompleted" for record in durable.records),
        fills_recovered=len(result.corrections),
        adopted_orders=tuple(adopted),
        venue_trade_seq=since,
        duplicate_fills=rebuild.duplicates,
        transfers_replayed=rebuild.transfers,
        transfers_recovered=len(reconciliation.transfers_recovered),
        mismatches=tuple(
            f"{d.kind} {d.subject}: ours {d.ours}, venue {d.venue}" for d in result.mismatches
        ),
        reconciled=not result.mismatches,
    )


def _transfer_ids(records: Iterable[JournalRecord]) -> set[str]:
    """The capital transfer ids journaled in ``records`` (a snapshot already holds them)."""
    return {
        str(record.payload.get("transfer_id"))
        for record in records
        if record.type == "CapitalTransferred" and isinstance(record.payload, dict)
    }


def _stop_killed_strategies(kernel: Kernel) -> None:
    """A strategy whose scope is tripped stays stopped, even if its ``StrategyStopped`` was
    lost with the journal tail (the trip was durable, the stop after it was not)."""
    switch = kernel.kill_switch
    for slot in kernel.slots:
        runner = kernel.runners[slot.name]
        if runner.stopped is not None:
            continue
        for scope in ("global", f"engine:{slot.engine}", f"strategy:{slot.name}"):
            if switch.is_tripped(scope):
                runner.kill(f"kill switch {scope}")
                break


def _restore_rate_windows(kernel: Kernel, records: Sequence[JournalRecord]) -> None:
    """Approvals of the last minute before now, from the journal, into the rate limits."""
    since = kernel.clock.now_ns() - MINUTE_NS
    approved: dict[str, list[tuple[str, int]]] = {}
    for record in reversed(records):
        if record.ts <= since:
            break
        if record.type == "RiskDecision":
            payload = record.payload
            if payload.get("approved") and payload.get("check") != "resent":
                pair = (str(payload["client_order_id"]), record.ts)
                approved.setdefault(str(payload["strategy"]), []).append(pair)
    for strategy, times in approved.items():
        kernel.risk.restore_rate_window(strategy, times)


_CONTROL_TYPES = {event_type.__name__: event_type for event_type in CONTROL_EVENTS}


def _control_events(records: Iterable[JournalRecord]) -> list[Event]:
    """The control-plane events among ``records``, decoded."""
    events: list[Event] = []
    for record in records:
        event_type = _CONTROL_TYPES.get(record.type)
        if event_type is not None:
            payload = {**record.payload, "type": record.type}
            try:
                events.append(msgspec.convert(payload, event_type))
            except msgspec.ValidationError as exc:
                raise RecoveryRefused(
                    f"journal seq {record.seq}: malformed {record.type}: {exc}"
                ) from None
    return events
