"""One node process of a campaign: built, attacked, crashed and restarted around its venue.

``CampaignNode.start`` wires a kernel (the node's own ``_build_kernel``) on a journal,
a venue, the chaos injector and the automated operator. ``crash`` kills the process the
way ``tests/e2e/test_exhaustive_crash.py`` does: the unflushed journal batch is lost, the
venue keeps running (the campaign loop feeds it bars while the node is down).
``restart`` builds a fresh kernel around the surviving venue, recovers it from the
durable journal (``predator.node.recover``), re-warms its strategies on the last day of
bars, journals the crash and the restart, and re-attaches chaos and the operator. Each
kernel gets an allocator (governance), its guard and window rebuilt from the journal.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path

from predator.campaign.events import NodeCrashed, NodeRestarted
from predator.campaign.operator import ACTOR, AutoOperator
from predator.chaos import ChaosBus, ChaosEngine, FaultInjector, PlannedFault
from predator.chaos.config import FAULT_CATEGORY
from predator.core.rng import RngStreams
from predator.core.scheduler import ScenarioClock
from predator.ledger.journal import Journal, JournalRecord
from predator.ledger.stores import JournalStore, MemoryStore, SqliteStore
from predator.market.bar import Bar
from predator.market.bar_loader import BarFeed
from predator.node.backtest import BacktestConfig, _announce_run, _build_kernel
from predator.node.governance import Governance, GovernanceConfig, attach_allocator
from predator.node.kernel import Kernel
from predator.node.recovery import DurableReader, RecoveryRefused, prepare_resume, recover
from predator.strategy.allocator import Allocator
from predator.validation.reconciliation import ReconciliationReport
from predator.venue.paper_exchange import PaperExchange

__all__ = ["REWARM_MIN_BARS", "CampaignNode", "Crash"]

REWARM_MIN_BARS = 60
"""A restarted node re-warms its strategies on twice their longest warm-up (at least
this many bars), not on the whole history: an SMA is exact after its window, an EMA has
converged after a few."""

IN_PROCESS = frozenset({"bus", "crash", "strategy", "storage", "clock"})
"""Fault categories that live inside the node process and die with it."""


class Crash:
    """A crash in progress: when it happened, what it lost, when the node comes back."""

    def __init__(
        self, fault: PlannedFault, at_ns: int, restart_at: int, unflushed: int, planned: bool
    ) -> None:
        self.fault = fault
        self.planned = planned
        self.deliberate = False
        self.at_ns = at_ns
        self.restart_at = restart_at
        self.unflushed = unflushed


class CampaignNode:
    """The node of a campaign across its crashes (see the module docstring)."""

    def __init__(
        self,
        *,
        feed: BarFeed,
        bars: Sequence[Bar],
        config: BacktestConfig,
        chaos: ChaosEngine,
        chaos_bus: ChaosBus,
        operator: AutoOperator,
        seed: int,
        out_dir: Path | None,
        snapshot_every: int,
        journal_batch: int,
        postmortems: bool,
        reconciliation: bool,
        governance: GovernanceConfig | None = None,
    ) -> None:
        self.feed = feed
        self.bars = bars
        self.config = config
        self.chaos = chaos
        self.chaos_bus = chaos_bus
        self.operator = operator
        self.streams = RngStreams(seed)
        self.out_dir = out_dir
        self.snapshot_every = snapshot_every
        self.journal_batch = journal_batch
        self.postmortem_dir = (
            None if out_dir is None or not postmortems else out_dir / "postmortems"
        )
        self.reconciliation = reconciliation
        self.governance_config = governance
        self.governance: Governance | None = None
        """The allocator on the current kernel (``None`` with governance off)."""
        self._memory: MemoryStore | None = None
        self._clears = sorted(  # the plan is complete before the node is built
            (f for f in chaos.plan if f.kind != "process_crash"),
            key=lambda f: (f.until_ns, f.at_ns, f.fault_id),
        )
        """The plan's clearances in time order (a crash has none)."""
        self._reader = DurableReader()
        """The durable journal read so far, verified and audited (the supervisor's)."""
        operator.audit = self._audit_refusal
        self.journal_path = None if out_dir is None else out_dir / "journal.sqlite"
        self.kernel: Kernel
        self.journal: Journal
        self.injector: FaultInjector
        self.crash: Crash | None = None
        self.crashes: list[Crash] = []
        self.lost_events = 0

    # -- the store --------------------------------------------------------------------
    def _open_store(self) -> JournalStore:
        if self.journal_path is None:
            if self._memory is None:
                self._memory = MemoryStore()
                return self._memory
            self._memory = self._memory.reopen()
            return self._memory
        return SqliteStore(self.journal_path)

    # -- start ------------------------------------------------------------------------
    def start(self) -> Kernel:
        """Build the first node, announce the run and start its strategies."""
        if self.journal_path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                path = Path(str(self.journal_path) + suffix)
                if path.exists():
                    os.remove(path)
        self.journal = Journal(store=self._open_store(), batch_size=self.journal_batch)
        kernel = self._build(None)
        _announce_run(kernel, self.feed, self.config, self.journal)
        for runner in kernel.runners.values():
            runner.start()
        self._attach(kernel, first=True)
        self._govern(kernel, (), kernel.clock.now_ns())
        return kernel

    def _build(self, exchange: PaperExchange | None) -> Kernel:
        feed, config = self.feed, self.config
        kernel = _build_kernel(
            feed,
            config,
            self.journal,
            exchange=exchange,
            snapshot_every=self.snapshot_every,
            postmortem_dir=self.postmortem_dir,
        )
        if not self.reconciliation:
            _switch_off_reconciliation(kernel)
        self.kernel = kernel
        return kernel

    def _attach(self, kernel: Kernel, *, first: bool) -> None:
        rng = self.streams.stream("chaos.injector")
        self.injector = FaultInjector(kernel, self.chaos_bus, rng)
        if first:
            self.chaos.attach(kernel, self.injector)
        self.operator.bind(kernel)

    # -- crash ------------------------------------------------------------------------
    def crash_now(
        self,
        fault: PlannedFault,
        restart_ns: int,
        *,
        planned: bool = True,
        deliberate: bool = False,
    ) -> Crash:
        """The node process dies now: its memory and its unflushed journal batch are gone.

        ``planned``: a chaos ``process_crash`` (otherwise the node died of an error)."""
        kernel, journal = self.kernel, self.journal
        now = kernel.clock.now_ns()
        unflushed = journal.last_seq  # the durable part is known only when it is read back
        # In-process faults die with the process; the venue's and the market's go on.
        for fault_id, active in sorted(self.injector.active.items()):
            if fault_id != fault.fault_id and FAULT_CATEGORY.get(active.kind) in IN_PROCESS:
                self.injector.clear(fault_id)
        self.injector.uninstall()
        journal.store.close()  # without a flush: the pending batch is lost
        crash = Crash(fault, now, now + max(restart_ns, 1), unflushed, planned)
        crash.deliberate = deliberate
        self.crash = crash
        self.crashes.append(crash)
        return crash

    def read_back(self) -> tuple[list[JournalRecord], str]:
        """The journal's records and digest at the end (its durable part if the node is
        down), and the journal closed."""
        if self.crash is None:
            journal = self.journal
            journal.flush()
            records = list(journal.records())
            digest = journal.digest
            journal.close()
            return records, digest
        store = self._open_store()
        journal = Journal(store=store, batch_size=self.journal_batch)
        try:
            return list(journal.records()), journal.digest
        finally:
            journal.close()

    def _audit_refusal(self, kernel: Kernel) -> str | None:
        """Why a restart of ``kernel``'s node would refuse its journal (the operator asks
        before it restarts one), from the incremental audit."""
        kernel.journal.retry_commit()  # what is durable is what a restart would read
        try:
            self._reader.load(kernel.journal.store)
            self._reader.refuse_unaudited()
        except RecoveryRefused as exc:
            return f"no restart: {exc}"
        return None

    def rewarm_bars(self) -> int:
        """Bars of history a restarted node re-warms on (see ``REWARM_MIN_BARS``)."""
        warmups = [int(getattr(slot.strategy, "warmup", 0) or 0) for slot in self.kernel.slots]
        return max(REWARM_MIN_BARS, 2 * max(warmups, default=0) + 1)

    def shut_down(self, reason: str) -> Crash:
        """A deliberate restart (the operator's): the journal is flushed, then the node
        stops; it comes back at the next bar exactly like after a crash."""
        self.journal.flush()
        fault = PlannedFault(
            at_ns=self.kernel.clock.now_ns(),
            fault_id=f"operator-restart-{len(self.crashes) + 1}",
            kind="process_crash",
            target="node",
            duration_ns=0,
            params={"error": reason},
        )
        return self.crash_now(fault, 0, planned=False, deliberate=True)

    def restart(self, index: int) -> Kernel:
        """Recover a fresh node before bar ``index``; it re-publishes the venue's last bar."""
        crash = self.crash
        assert crash is not None
        old_kernel, old_injector = self.kernel, self.injector
        window = self.rewarm_bars()  # the dead node's strategies know their warm-ups
        exchange = old_kernel.exchange
        store = self._open_store()
        durable = self._reader.load(store)  # reads, verifies and audits only what is new
        # The node never trades on a journal that fails the audit (recover's own check,
        # here on the running audit of every durable record).
        self._reader.refuse_unaudited(venue_trades={f.trade_id for f in exchange.trade_log})
        crash.unflushed -= durable.durable_seq
        self.lost_events += crash.unflushed
        if self.journal_path is not None:
            store.close()
        self.journal = Journal(store=self._open_store(), batch_size=self.journal_batch)
        fresh = self._build(exchange)
        if durable.durable_seq == 0:
            _announce_run(fresh, self.feed, self.config, self.journal)
        last = exchange.last_bar(self.feed.instrument.symbol)
        if last is not None:
            fresh.clock.set(last.ts)
        now = fresh.clock.now_ns()
        fresh.bus.publish(
            NodeCrashed(
                ts=now,
                crashed_at=crash.at_ns,
                reason=_crash_reason(crash),
                fault_id=crash.fault.fault_id,
                lost_events=crash.unflushed,
                down_ns=now - crash.at_ns,
            )
        )
        report = recover(durable, exchange=exchange, kernel=fresh, audited=True)
        start = max(0, index - window)
        prepare_resume(
            fresh, _sub_feed(self.feed, self.bars[start:index]), self.config, self.journal
        )
        fresh.bus.publish(
            NodeRestarted(
                ts=now,
                actor=ACTOR,
                reason="restarted after a process crash; recovered from the journal and venue",
                durable_seq=report.durable_seq,
                snapshot_seq=report.snapshot_seq,
                fills_recovered=report.fills_recovered,
                adopted_orders=len(report.adopted_orders),
                reconciled=report.reconciled,
            )
        )
        self.journal.flush()  # the restart is committed before the node trades again
        old_injector.crash_handled()
        self._attach(fresh, first=False)  # the operator restarts what it knew was running
        upcoming = self.bars[index].ts if index < len(self.bars) else now
        self._govern(fresh, durable.records, upcoming)  # before the carried faults strike it
        self._carry_chaos(old_injector, now)
        self.crash = None
        return fresh

    def _govern(self, kernel: Kernel, records: Sequence[JournalRecord], upcoming: int) -> None:
        """An allocator on ``kernel``, its guard, sample window and round schedule rebuilt
        from the durable ``records`` (a fresh node after a crash; no round before the
        ``upcoming`` bar), reachable by the fault injector."""
        config = self.governance_config
        if config is None:
            return
        allocator = Allocator(config.allocator)
        self.governance = attach_allocator(kernel, allocator, config.interval_ns)
        self.governance.restore(records, not_before=upcoming)
        self.injector.govern(allocator)

    def _carry_chaos(self, old: FaultInjector, now: int) -> None:
        """The rest of the fault plan on the fresh node; faults outside the process go on.

        The plan is fed to the scheduler one fault at a time (:class:`_Pump`), so a
        restart costs a binary search, not the rescheduling of the whole remaining plan
        (a year of extreme chaos is ~100,000 faults and ~1,000 restarts)."""
        injector, scheduler = self.injector, self.kernel.scheduler
        for fault_id, fault in sorted(old.active.items()):
            if fault.until_ns <= now:  # it ended while the node was down
                old.clear(fault_id)
                continue
            injector.inject(fault)  # still active (venue, market): it strikes the new node too
            old.active.pop(fault_id, None)
        plan = self.chaos.plan
        clears = self._clears
        _Pump(
            scheduler,
            plan,
            bisect_right(plan, now, key=_at_ns),
            _at_ns,
            injector.inject,
        ).arm()
        _Pump(
            scheduler,
            clears,
            bisect_right(clears, now, key=_until_ns),
            _until_ns,
            lambda fault: injector.clear(fault.fault_id),
        ).arm()


def _at_ns(fault: PlannedFault) -> int:
    return fault.at_ns


def _until_ns(fault: PlannedFault) -> int:
    return fault.until_ns


class _Pump:
    """Schedules ``items`` (sorted by ``key``) from ``index`` on, one at a time: each
    scheduled call acts on its item and schedules the next."""

    def __init__(
        self,
        scheduler: ScenarioClock,
        items: Sequence[PlannedFault],
        index: int,
        key: Callable[[PlannedFault], int],
        act: Callable[[PlannedFault], object],
    ) -> None:
        self.scheduler = scheduler
        self.items = items
        self.index = index
        self.key = key
        self.act = act

    def arm(self) -> None:
        if self.index < len(self.items):
            self.scheduler.schedule(self.key(self.items[self.index]), self._fire)

    def _fire(self) -> None:
        item = self.items[self.index]
        self.index += 1
        self.arm()  # first: the act may stop the process (a crash) before it returns
        self.act(item)


def _crash_reason(crash: Crash) -> str:
    if crash.planned:
        return f"process crash ({crash.fault.fault_id})"
    detail = crash.fault.params.get("error", "?")
    if crash.deliberate:
        return f"restarted by the auto-operator: {detail}"
    return f"died of an unhandled error: {detail}"


def _sub_feed(feed: BarFeed, bars: Sequence[Bar]) -> BarFeed:
    """``bars`` (a window of ``feed``) as a feed of their own."""
    if not bars:
        bars = [next(iter(feed))]
    return BarFeed(
        path=feed.path,
        format=feed.format,
        instrument=feed.instrument,
        volume_precision=feed.volume_precision,
        ts=[bar.ts for bar in bars],
        opens=[bar.open for bar in bars],
        highs=[bar.high for bar in bars],
        lows=[bar.low for bar in bars],
        closes=[bar.close for bar in bars],
        volumes=[bar.volume for bar in bars] if feed.has_volume else None,
    )


def _switch_off_reconciliation(kernel: Kernel) -> None:
    """Test only: the node never reconciles with the venue (proves the gates can fail)."""
    clock = kernel.clock

    def never(_now: int | None = None) -> ReconciliationReport:
        return ReconciliationReport(checked_at=clock.now_ns())

    kernel.reconciliation.maybe_check = never  # type: ignore[method-assign,assignment]
    kernel.reconciliation.check = never  # type: ignore[method-assign]
