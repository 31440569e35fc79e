"""Crash recovery (predator.node.recovery) on a real kernel driven by real GOOG daily bars.

A node journaling to a file with a small group-commit batch is crashed (the unflushed
tail and all memory are lost) while the venue keeps matching; a fresh kernel recovers
from the durable journal and must agree with the venue to the cent, with every venue
trade applied exactly once.
"""

from __future__ import annotations

import sqlite3
from functools import cache
from pathlib import Path

import pytest

from predator.core.events import Event
from predator.execution.order import OrderFilled, OrderRejected, OrderSubmitted
from predator.ledger import Journal
from predator.ledger.journal import JournalRecord
from predator.ledger.stores import SqliteStore
from predator.market import BarFeed, load_bars
from predator.market.bar import Bar
from predator.node import BacktestConfig
from predator.node.backtest import _announce_run, _build_kernel
from predator.node.kernel import Kernel
from predator.node.recovery import (
    OrderAdopted,
    RecoveryRefused,
    RecoveryReport,
    load_durable,
    recover,
)
from predator.testkit import shared_data_dir
from predator.validation import FillRecovered
from predator.venue.paper_exchange import PaperExchange

GOOG = "backtesting_py_GOOG_daily_2004-2013.csv"
BATCH = 16
VENUE_BARS = 3
"""Bars the venue matches alone after the crash, before the node is back."""


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / GOOG)


def config() -> BacktestConfig:
    return BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")


class Crashed:
    """What survives a crash: the journal file, the venue, the bars still to come."""

    def __init__(self, path: Path, exchange: PaperExchange, bars: list[Bar], lost: int) -> None:
        self.path = path
        self.exchange = exchange
        self.bars = bars
        self.lost = lost
        """Journal records appended but not flushed when the node died."""


def run_and_crash(path: Path, crash_after: int, *, until_submit_lost: bool = False) -> Crashed:
    """Drive a kernel bar by bar and crash it after ``crash_after`` bars.

    With ``until_submit_lost`` the store fails every commit from ``crash_after`` on (a
    full disk: the kernel's write-ahead commit of each order cannot succeed) and the node
    goes on until an ``OrderSubmitted`` is still unflushed at the end of a bar, and
    crashes there.
    """
    journal = Journal(path, batch_size=BATCH)
    kernel = _build_kernel(goog(), config(), journal)
    _announce_run(kernel, goog(), config(), journal)  # a node's journal starts with it
    submitted_at: list[int] = []
    kernel.bus.subscribe(OrderSubmitted, lambda _e: submitted_at.append(journal.last_seq))
    for runner in kernel.runners.values():
        runner.start()
    bars = list(goog())
    done = 0
    for bar in bars:
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
        done += 1
        if done < crash_after:
            continue
        if until_submit_lost and not hasattr(journal.store, "_healthy_write_batch"):
            store = journal.store
            store._healthy_write_batch = store.write_batch  # type: ignore[attr-defined]
            store.write_batch = _disk_full  # type: ignore[method-assign]
        durable = journal.store.load_tail()[0]
        if not until_submit_lost or (submitted_at and submitted_at[-1] > durable):
            break
    lost = journal.last_seq - journal.store.load_tail()[0]
    journal.store.close()  # the crash: the pending batch is never written
    exchange = kernel.exchange
    clock = kernel.clock
    rest = bars[done:]
    for bar in rest[:VENUE_BARS]:  # the venue keeps running without us
        clock.set(bar.ts)
        exchange.on_bar(bar)
    return Crashed(path, exchange, rest[VENUE_BARS:], lost)


def _disk_full(_batch: object) -> None:
    raise OSError("disk full")


def restart(crashed: Crashed) -> tuple[Kernel, RecoveryReport, list[Event]]:
    """A fresh kernel (same config) recovered from the durable journal and the venue."""
    store = SqliteStore(crashed.path)
    durable = load_durable(store)
    store.close()
    journal = Journal(crashed.path, batch_size=BATCH)
    kernel = _build_kernel(goog(), config(), journal, exchange=crashed.exchange)
    events: list[Event] = []
    kernel.bus.subscribe(Event, events.append)
    last = crashed.exchange.last_bar("GOOG")
    assert last is not None
    kernel.clock.set(last.ts)
    report = recover(durable, exchange=crashed.exchange, kernel=kernel)
    journal.flush()
    return kernel, report, events


def assert_agrees_with_venue(kernel: Kernel, exchange: PaperExchange) -> None:
    for portfolio in kernel.portfolios.values():
        cash, positions = exchange.account_snapshot(portfolio.account)
        assert portfolio.cash == cash
        for symbol, position in portfolio.positions.items():
            assert position.quantity == positions.get(symbol, 0)
        portfolio.check_balance_equation()
    applied = [t for order in kernel.execution.orders.values() for t in order.trade_ids]
    assert len(applied) == len(set(applied))  # no venue trade applied twice
    assert sorted(applied) == sorted(f.trade_id for f in exchange.trade_log)
    fills = sum(p.fills for p in kernel.portfolios.values())
    assert fills == exchange.trade_seq


@pytest.mark.parametrize("crash_after", [200, 500, 1000, 777])
def test_recovery_after_a_crash_agrees_with_the_venue(tmp_path: Path, crash_after: int) -> None:
    crashed = run_and_crash(tmp_path / "journal.db", crash_after)
    assert 0 < crashed.lost < BATCH  # died in the middle of a group commit
    kernel, report, events = restart(crashed)

    assert report.reconciled, report.mismatches
    assert report.discarded_tail == ()
    assert report.fills_recovered > 0 and report.fills_replayed > 0
    assert kernel.kill_switch.tripped_scopes() == []
    assert_agrees_with_venue(kernel, crashed.exchange)
    journaled_fills = [r for r in load_durable_records(crashed.path) if r.type == "OrderFilled"]
    recovered = [e for e in events if isinstance(e, FillRecovered)]
    assert report.fills_recovered == len(recovered)
    assert report.fills_replayed + report.fills_recovered == crashed.exchange.trade_seq
    # Every fill is journaled exactly once: the replayed ones before the crash, the
    # recovered ones (each after its FillRecovered) by the new kernel.
    assert len(journaled_fills) == crashed.exchange.trade_seq
    assert len({r.payload["trade_id"] for r in journaled_fills}) == len(journaled_fills)
    assert report.duplicate_fills == 0
    for trade_id in report.adopted_orders:
        assert trade_id in kernel.execution.orders


def load_durable_records(path: Path) -> list[JournalRecord]:
    store = SqliteStore(path)
    try:
        return list(load_durable(store).records)
    finally:
        store.close()


def test_an_order_whose_submission_was_lost_is_adopted_from_the_venue(tmp_path: Path) -> None:
    crashed = run_and_crash(tmp_path / "journal.db", 300, until_submit_lost=True)
    assert crashed.lost > 0
    kernel, report, events = restart(crashed)

    assert report.reconciled, report.mismatches
    assert report.adopted_orders
    adopted = [e for e in events if isinstance(e, OrderAdopted)]
    assert [e.client_order_id for e in adopted] == list(report.adopted_orders)
    for client_order_id in report.adopted_orders:
        order = kernel.execution.orders[client_order_id]
        venue_open = {r.client_order_id for r in crashed.exchange.open_orders()}
        if client_order_id in venue_open:
            assert order.is_open
        else:  # the venue filled it while we were down: its fills say so
            assert order.trade_ids
            assert order.status.value == "filled"
    assert_agrees_with_venue(kernel, crashed.exchange)
    # The adoption is journaled before the fills it explains.
    store = SqliteStore(crashed.path)
    types = [row[2] for row in store.read(report.durable_seq + 1)]
    store.close()
    assert types.index("OrderAdopted") < types.index("FillRecovered")
    # The audit accepts an adoption as the explanation of the decision and submission
    # lost with the tail: the recovered journal has no coverage, chain or fill findings.
    from predator.ledger import Journal as _Journal
    from predator.validation import audit

    journal = _Journal(crashed.path)
    findings = audit(journal.records()).findings
    journal.close()
    blocking = [
        f for f in findings if f.check in ("coverage", "chain", "sequence", "duplicate_fill")
    ]
    assert blocking == []


def test_a_torn_last_record_is_discarded_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    crashed = run_and_crash(path, 500)
    db = sqlite3.connect(path)
    last, chain = db.execute("SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    with db:
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            (last + 1, 0, "OrderFilled", b'{"trade_id": "T99', chain),
        )
    db.close()

    kernel, report, _events = restart(crashed)

    assert report.discarded_tail == (last + 1,)
    assert report.durable_seq == last
    assert report.reconciled, report.mismatches
    assert_agrees_with_venue(kernel, crashed.exchange)
    assert kernel.journal.verify() == []  # the journal goes on from the last good record


def test_a_corrupted_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    run_and_crash(path, 200)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE events SET payload = ? WHERE seq = 5", (b'{"edited": 1}',))
    db.close()
    store = SqliteStore(path)
    with pytest.raises(RecoveryRefused, match="seq 5"):
        load_durable(store)
    store.close()


def test_recovery_replays_without_journaling_again(tmp_path: Path) -> None:
    crashed = run_and_crash(tmp_path / "journal.db", 500)
    kernel, report, events = restart(crashed)
    replayed = [e for e in events if isinstance(e, OrderFilled)]
    assert len(replayed) == report.fills_recovered  # replayed fills never hit the bus
    assert kernel.journal.last_seq >= report.durable_seq


def test_a_journal_that_fails_the_audit_is_refused_not_guessed(tmp_path: Path) -> None:
    """Chain intact but a risk decision missing: recovery stops and says why."""
    from predator.ledger.journal import GENESIS, chain_next
    from predator.node.recovery import RecoveryRefused as Refused

    path = tmp_path / "journal.db"
    crashed = run_and_crash(path, 300)
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, ts, type, payload FROM events ORDER BY seq").fetchall()
    victim = next(i for i, row in enumerate(rows) if row[2] == "RiskDecision")
    kept = rows[:victim] + rows[victim + 1 :]
    chain = GENESIS
    rebuilt = []
    for seq, (_old, ts, kind, payload) in enumerate(kept, 1):
        chain = chain_next(chain, payload)
        rebuilt.append((seq, ts, kind, payload, chain))
    with db:  # a forger who recomputes the chain: only the audit can tell
        db.execute("DELETE FROM events")
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rebuilt)
    db.close()

    with pytest.raises(Refused, match=r"fails the audit.*coverage"):
        restart(crashed)


# -- snapshots and control-plane state ---------------------------------------------------
def run_and_crash_with_snapshots(path: Path, crash_after: int, every: int) -> Crashed:
    """As :func:`run_and_crash`, the kernel snapshotting every ``every`` journal events."""
    journal = Journal(path, batch_size=BATCH)
    kernel = _build_kernel(goog(), config(), journal, snapshot_every=every)
    _announce_run(kernel, goog(), config(), journal)
    for runner in kernel.runners.values():
        runner.start()
    bars = list(goog())
    for bar in bars[:crash_after]:
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    assert kernel.snapshots > 0
    lost = journal.last_seq - journal.store.load_tail()[0]
    journal.store.close()
    exchange = kernel.exchange
    for bar in bars[crash_after : crash_after + VENUE_BARS]:
        kernel.clock.set(bar.ts)
        exchange.on_bar(bar)
    return Crashed(path, exchange, bars[crash_after + VENUE_BARS :], lost)


def test_recovery_starts_from_the_newest_snapshot_and_replays_only_the_tail(
    tmp_path: Path,
) -> None:
    crashed = run_and_crash_with_snapshots(tmp_path / "journal.db", 1000, every=50)
    kernel, report, _events = restart(crashed)

    assert report.reconciled, report.mismatches
    assert report.snapshot_seq > 0
    assert report.records_replayed == report.durable_seq - report.snapshot_seq < 50 + BATCH
    assert_agrees_with_venue(kernel, crashed.exchange)


def test_a_snapshot_that_does_not_match_the_chain_is_ignored_and_everything_replayed(
    tmp_path: Path,
) -> None:
    crashed = run_and_crash_with_snapshots(tmp_path / "journal.db", 1000, every=50)
    with sqlite3.connect(crashed.path) as db:  # a snapshot of another journal, say
        db.execute("UPDATE snapshots SET chain = zeroblob(16)")
    store = SqliteStore(crashed.path)
    durable = load_durable(store)
    store.close()
    assert durable.snapshot is None
    assert durable.snapshot_problem is not None and "does not match" in durable.snapshot_problem

    kernel, report, _events = restart(crashed)
    assert report.snapshot_seq == 0 and report.records_replayed == report.durable_seq
    assert report.reconciled
    assert_agrees_with_venue(kernel, crashed.exchange)


def test_a_kill_switch_tripped_before_the_crash_is_still_tripped_after_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path, batch_size=BATCH)
    kernel = _build_kernel(goog(), config(), journal, snapshot_every=50)
    _announce_run(kernel, goog(), config(), journal)
    for runner in kernel.runners.values():
        runner.start()
    bars = list(goog())
    for index, bar in enumerate(bars[:900]):
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
        if index == 400:
            kernel.kill_switch.trip("strategy:sma_cross", "operator says stop", actor="ops")
            kernel.breakers["sma_cross"].trip("manual test trip")
    assert kernel.runners["sma_cross"].stopped is not None
    journal.flush()
    journal.store.close()
    exchange = kernel.exchange

    kernel2, report, _events = restart(Crashed(path, exchange, bars[900:], 0))
    assert report.snapshot_seq > 0  # the trip is older than the snapshot: it carries it
    assert kernel2.kill_switch.is_tripped("strategy:sma_cross")
    assert kernel2.runners["sma_cross"].stopped is not None
    assert kernel2.breakers["sma_cross"].trips == 1
    assert kernel2.kill_switch_trips == 1
    # ...and from the journal alone, without the snapshot, the same:
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM snapshots")
    kernel3, report3, _ = restart(Crashed(path, exchange, bars[900:], 0))
    assert report3.snapshot_seq == 0
    assert kernel3.kill_switch.is_tripped("strategy:sma_cross")
    assert kernel3.runners["sma_cross"].stopped is not None
    assert kernel3.breakers["sma_cross"].trips == 1


def test_orders_refused_by_a_halted_execution_are_still_counted_after_a_restart(
    tmp_path: Path,
) -> None:
    # Found by the campaigns: recovery skipped them and RunCompleted's order count fell
    # short of the journal's, so the audit of the finished run failed.
    path = tmp_path / "journal.db"
    journal = Journal(path, batch_size=BATCH)
    kernel = _build_kernel(goog(), config(), journal)
    _announce_run(kernel, goog(), config(), journal)
    for runner in kernel.runners.values():
        runner.start()
    bars = list(goog())
    refused: list[str] = []
    kernel.bus.subscribe(
        OrderRejected,
        lambda e: refused.append(e.client_order_id) if e.reason == "execution_halted" else None,
    )
    for index, bar in enumerate(bars[:900]):
        if index == 300:
            kernel.execution.halted = "halted for the test"
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    assert refused
    journal.flush()
    journal.store.close()

    fresh, report, _events = restart(Crashed(path, kernel.exchange, bars[900:], 0))
    assert report.reconciled
    assert len(fresh.execution.orders) == len(kernel.execution.orders)
    for client_order_id in refused:
        assert fresh.execution.orders[client_order_id].status.value == "rejected"
