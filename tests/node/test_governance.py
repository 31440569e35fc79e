"""Governance on real runs: the allocator moves capital between engines on real bars, the
journal audits clean, and a crash around a transfer recovers to the same books.

Three strategies in two engines on GOOG daily bars (2004-2013): two trend followers in a
``trend`` engine and a slower one in a ``swing`` engine, each in its own pool; an
allocator runs weekly on the kernel's scheduler.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest

from predator.core.events import Event
from predator.ledger import Journal
from predator.ledger.stores import SqliteStore
from predator.market import BarFeed, load_bars
from predator.node import BacktestConfig, StrategySpec, load_durable, recover, resume_run
from predator.node.backtest import _announce_run, _build_kernel, _finish_run
from predator.node.governance import (
    Governance,
    GovernanceConfig,
    attach_allocator,
    attach_from_config,
)
from predator.node.kernel import Kernel
from predator.node.snapshot import decode_snapshot, restore_snapshot, take_snapshot
from predator.portfolio.portfolio import PortfolioSavedState
from predator.portfolio.transfers import CapitalTransferred
from predator.strategy.allocator import DAY_NS, Allocator, AllocatorConfig
from predator.testkit import shared_data_dir
from predator.testkit.crash import Crash
from predator.validation import audit

BATCH = 16
CONFIG = BacktestConfig(
    cash="90000",  # a three-way split of whole money units (a crashed journal has
    # only RunStarted to size the pools from)
    commission="0.002",
    strategies=(
        StrategySpec(
            strategy="sma_cross", name="trend", engine="trend", params={"fast": 10, "slow": 30}
        ),
        StrategySpec(strategy="ema_cross", name="trend_ema", engine="trend"),
        StrategySpec(
            strategy="sma_cross", name="swing", engine="swing", params={"fast": 20, "slow": 60}
        ),
    ),
)
GOVERNANCE: dict[str, Any] = {
    "interval_ns": 7 * DAY_NS,
    "allocator": {
        "window": 8,
        "max_move_fraction": "0.05",
        "hysteresis": "0.02",
        "min_interval_ns": 14 * DAY_NS,
        "max_score_jump": 50.0,
    },
}


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")


class Run:
    """One governed run, optionally crashed after journal event ``crash_at``."""

    def __init__(
        self, path: Path | None, crash_at: int | None = None, snapshot_every: int | None = 40
    ) -> None:
        self.path = path
        self.journal = Journal(path, batch_size=BATCH)
        self.kernel: Kernel = _build_kernel(
            goog(), CONFIG, self.journal, snapshot_every=snapshot_every
        )
        self.governance: Governance = attach_from_config(self.kernel, GOVERNANCE)
        self.crash = None
        if crash_at is not None:
            self.crash = Crash(self.journal, crash_at)
            self.kernel.bus.subscribe(Event, self.crash.on_event)
            self.kernel.bus.interceptor = self.crash
        _announce_run(self.kernel, goog(), CONFIG, self.journal)
        for runner in self.kernel.runners.values():
            runner.start()
        kernel = self.kernel
        for bar in goog():
            if self.dead:
                break
            if kernel.scheduler.next_time is not None and kernel.scheduler.next_time <= bar.ts:
                kernel.scheduler.run_until(bar.ts)
            if self.dead:
                break
            kernel.clock.set(bar.ts)
            kernel.bus.publish(bar)
        if not self.dead:
            _finish_run(kernel, CONFIG, self.journal, None, len(goog()))
        if not self.dead:
            self.journal.flush()

    @property
    def dead(self) -> bool:
        return self.crash is not None and self.crash.dead


def _without_checkpoint(saved: PortfolioSavedState) -> PortfolioSavedState:
    """The pool's state; its reconciliation checkpoint is bookkeeping, not state."""
    return msgspec.structs.replace(
        saved, checkpoint=None, since_checkpoint=[], transfers_since_checkpoint=0
    )


def books(kernel: Kernel) -> tuple[Any, ...]:
    """Every pool's exact state and the ledger's balances."""
    pools = tuple(
        (name, _without_checkpoint(portfolio.export_state()))
        for name, portfolio in sorted(kernel.portfolios.items())
    )
    return pools, tuple(kernel.ledger.balances().items())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(tmp_path_factory.mktemp("governed") / "journal.sqlite")


# -- a real governed run ------------------------------------------------------------------
def test_the_allocator_moves_capital_between_engines_and_the_journal_audits_clean(
    reference: Run,
) -> None:
    kernel, journal = reference.kernel, reference.journal
    records = list(journal.records())
    transfers = [r for r in records if r.type == "CapitalTransferred"]
    assert len(transfers) >= 5
    assert {r.payload["actor"] for r in transfers} == {"allocator"}
    pools = {(r.payload["from_pool"], r.payload["to_pool"]) for r in transfers}
    engines = {"trend": "trend", "trend_ema": "trend", "swing": "swing"}
    assert any(engines[a] != engines[b] for a, b in pools)  # capital crossed engines
    assert any(r.type == "CapitalReallocated" for r in records)
    assert any(r.type == "AllocationThrottled" for r in records)
    report = audit(records)
    assert report.findings == [] and report.complete
    assert kernel.reconciliation.mismatches == []
    assert kernel.kill_switch_trips == 0
    for portfolio in kernel.portfolios.values():
        portfolio.check_balance_equation()
        cash, positions = kernel.exchange.account_snapshot(portfolio.account)
        assert (cash, positions["GOOG"]) == (portfolio.cash, 0)
    total = sum(p.cash for p in kernel.portfolios.values())
    earned = sum(p.realized_pnl - p.fees for p in kernel.portfolios.values())
    assert total == kernel.initial_capital() + earned  # capital conserved to the unit
    assert sum(p.transfers for p in kernel.portfolios.values()) == 0
    assert sum(1 for p in kernel.portfolios.values() if p.transfers) >= 2
    report_ = reference.governance.allocator.report()
    assert report_["reallocations"] >= 1 and report_["rounds"] > 400


def test_each_strategys_pnl_capital_follows_the_transfers(reference: Run) -> None:
    kernel = reference.kernel
    for slot in kernel.slots:
        portfolio = kernel.portfolios[slot.name]
        # Capital allocated: the start plus what came in minus what went out (never below
        # 0: a pool that gave away its winnings has no capital left to earn a return on).
        assert kernel.pnl.capital_of(slot.name) == max(0, slot.capital + portfolio.transfers)
    assert any(p.transfers for p in kernel.portfolios.values())


def test_a_governed_run_is_deterministic(reference: Run, tmp_path: Path) -> None:
    again = Run(tmp_path / "again.sqlite")
    assert again.journal.digest == reference.journal.digest
    assert books(again.kernel) == books(reference.kernel)


def test_a_governed_run_on_btc_minutes_moves_capital_and_audits_clean() -> None:
    feed = load_bars(
        Path(__file__).resolve().parents[2] / "data/binanceus_BTCUSDT_1m_20230301_20230321.csv.gz",
        size_precision=5,
    )
    config = BacktestConfig(
        cash="100000",
        commission="0.001",
        strategies=(
            StrategySpec(strategy="sma_cross", name="fast", engine="trend", params={"fast": 5}),
            StrategySpec(strategy="ema_cross", name="slow", engine="swing"),
        ),
    )
    journal = Journal(None)
    kernel = _build_kernel(feed, config, journal, snapshot_every=None)
    hour = DAY_NS // 24
    allocator = Allocator(
        AllocatorConfig(window=12, min_interval_ns=6 * hour, max_reallocations_per_day=2)
    )
    governance = attach_allocator(kernel, allocator, interval_ns=hour)
    _announce_run(kernel, feed, config, journal)
    for runner in kernel.runners.values():
        runner.start()
    for bar in feed:
        if kernel.scheduler.next_time is not None and kernel.scheduler.next_time <= bar.ts:
            kernel.scheduler.run_until(bar.ts)
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    _finish_run(kernel, config, journal, None, len(feed))
    records = list(journal.records())
    assert sum(r.type == "CapitalTransferred" for r in records) >= 3
    assert audit(records).findings == []
    assert kernel.reconciliation.mismatches == []
    assert governance.allocator.reallocations <= 2 * 21  # never more than 2 a day
    governance.stop()


def test_governance_settings_are_validated_in_one_line() -> None:
    assert GovernanceConfig().interval_ns == DAY_NS
    kernel = _build_kernel(goog(), CONFIG, Journal(None), snapshot_every=None)
    with pytest.raises(ValueError, match=r"governance settings: .*window must be >= 1"):
        attach_from_config(kernel, {"allocator": {"window": 0}})
    with pytest.raises(ValueError, match="interval_ns must be > 0"):
        attach_allocator(kernel, Allocator(), 0)


def test_a_killed_strategy_neither_gives_nor_takes_capital(tmp_path: Path) -> None:
    journal = Journal(None)
    kernel = _build_kernel(goog(), CONFIG, journal, snapshot_every=None)
    governance = attach_from_config(kernel, GOVERNANCE)
    _announce_run(kernel, goog(), CONFIG, journal)
    for runner in kernel.runners.values():
        runner.start()
    kernel.kill_switch.trip("strategy:swing", "test", actor="operator")
    for bar in goog():
        if kernel.scheduler.next_time is not None and kernel.scheduler.next_time <= bar.ts:
            kernel.scheduler.run_until(bar.ts)
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    governance.stop()
    moved = [e for e in governance.transfers.transferred if isinstance(e, CapitalTransferred)]
    assert moved and all("swing" not in (e.from_pool, e.to_pool) for e in moved)


# -- crashes around transfers -------------------------------------------------------------
def _recover(crashed: Run) -> tuple[Kernel, Any, Journal]:
    assert crashed.path is not None
    exchange = crashed.kernel.exchange
    crashed.journal.store.close()
    store = SqliteStore(crashed.path)
    durable = load_durable(store)
    store.close()
    journal = Journal(crashed.path, batch_size=BATCH)
    fresh = _build_kernel(goog(), CONFIG, journal, exchange=exchange, snapshot_every=40)
    if durable.durable_seq == 0:
        _announce_run(fresh, goog(), CONFIG, journal)
    last = exchange.last_bar("GOOG")
    if last is not None:
        fresh.clock.set(last.ts)
    report = recover(durable, exchange=exchange, kernel=fresh)
    assert report.reconciled, report.mismatches
    return fresh, (report, durable), journal


def _transfer_seqs(reference: Run) -> list[int]:
    return [r.seq for r in reference.journal.records() if r.type == "CapitalTransferred"]


def _venue_view(kernel: Kernel) -> dict[str, tuple[int, int, int]]:
    """Each pool's cash, position and net transfers as the venue knows them."""
    view = {}
    for account, book in kernel.exchange.accounts.items():
        if account == "main":
            continue
        net = sum(
            (x.amount if x.to_account == account else 0)
            - (x.amount if x.from_account == account else 0)
            for x in kernel.exchange.transfer_log
        )
        view[account] = (book.cash, book.positions["GOOG"], net)
    return view


def _pools_view(kernel: Kernel) -> dict[str, tuple[int, int, int]]:
    return {
        p.account: (p.cash, p.position_quantity("GOOG"), p.transfers)
        for p in kernel.portfolios.values()
    }


def test_a_crash_around_each_of_the_first_transfers_recovers_the_same_books(
    reference: Run, tmp_path: Path
) -> None:
    """The venue is the truth after a crash: the recovered pools match it to the unit, and
    when the dead node had heard everything the venue did (no fill lost in flight), the
    recovered books are the dead node's books exactly, ledger included."""
    seqs = _transfer_seqs(reference)
    points = sorted({at for seq in seqs[:3] for at in range(seq - 2, seq + 18)})
    lost = replayed = exact = 0
    for at in points:
        path = tmp_path / f"crash-{at}.sqlite"
        crashed = Run(path, crash_at=at)
        assert crashed.dead
        fresh, (report, _durable), journal = _recover(crashed)
        assert _pools_view(fresh) == _venue_view(fresh), f"crash after journal event {at}"
        if _pools_view(crashed.kernel) == _venue_view(crashed.kernel):
            assert books(fresh) == books(crashed.kernel), f"crash after journal event {at}"
            exact += 1
        for portfolio in fresh.portfolios.values():
            portfolio.check_balance_equation()
        lost += report.transfers_recovered
        replayed += report.transfers_replayed
        journal.close()
        path.unlink()
    assert lost >= 1  # some crashes lost a transfer with the journal tail: the venue had it
    assert replayed >= 1
    assert exact > len(points) // 2


def test_a_run_crashed_after_a_transfer_resumes_and_audits_clean(
    reference: Run, tmp_path: Path
) -> None:
    at = _transfer_seqs(reference)[1]
    path = tmp_path / "resumed.sqlite"
    crashed = Run(path, crash_at=at)
    fresh, (report, durable), journal = _recover(crashed)
    governance = attach_from_config(fresh, GOVERNANCE)
    governance.restore(durable.records)
    result = resume_run(fresh, goog(), CONFIG, journal)
    journal.flush()
    findings = audit(list(journal.records())).findings
    journal.close()
    assert findings == [], findings[:3]
    assert result.fills > 0 and fresh.reconciliation.mismatches == []
    assert sum(p.transfers for p in fresh.portfolios.values()) == 0
    trade_ids = [t for order in fresh.execution.orders.values() for t in order.trade_ids]
    assert sorted(trade_ids) == sorted(f.trade_id for f in fresh.exchange.trade_log)
    transfer_ids = [
        r.payload["transfer_id"] for r in Journal(path).records() if r.type == "CapitalTransferred"
    ]
    assert sorted(transfer_ids) == sorted(x.transfer_id for x in fresh.exchange.transfer_log)
    assert report.transfers_replayed + report.transfers_recovered >= 2


def test_a_snapshot_taken_after_transfers_restores_the_same_books(reference: Run) -> None:
    kernel = reference.kernel
    assert any(p.transfers for p in kernel.portfolios.values())
    snapshot = decode_snapshot(take_snapshot(kernel))
    assert {name: saved.transfers for name, saved in snapshot.pools.items()} == {
        name: p.transfers for name, p in kernel.portfolios.items()
    }
    fresh = _build_kernel(goog(), CONFIG, Journal(None), snapshot_every=None)
    restore_snapshot(fresh, snapshot)
    assert books(fresh) == books(kernel)
    for portfolio in fresh.portfolios.values():
        portfolio.check_balance_equation()


def test_a_restart_rebuilds_the_sample_window_and_keeps_the_rounds_on_schedule() -> None:
    """Campaigns crash about daily: the allocator's equity window (``AllocatorSampled``,
    journaled each round) and its round schedule survive a restart."""
    feed = load_bars(
        Path(__file__).resolve().parents[2] / "data/binanceus_BTCUSDT_1m_20230301_20230321.csv.gz",
        size_precision=5,
    )
    config = BacktestConfig(
        cash="100000",
        commission="0.001",
        strategies=(
            StrategySpec(strategy="sma_cross", name="fast", engine="trend", params={"fast": 5}),
            StrategySpec(strategy="ema_cross", name="slow", engine="swing"),
        ),
    )
    hour = DAY_NS // 24
    settings = GovernanceConfig(interval_ns=4 * hour, allocator=AllocatorConfig(window=6))
    journal = Journal(None)
    kernel = _build_kernel(feed, config, journal, snapshot_every=None)
    governance = attach_allocator(kernel, Allocator(settings.allocator), settings.interval_ns)
    _announce_run(kernel, feed, config, journal)
    for runner in kernel.runners.values():
        runner.start()
    for bar in list(feed)[: 3 * 1440 + 30]:
        if kernel.scheduler.next_time is not None and kernel.scheduler.next_time <= bar.ts:
            kernel.scheduler.run_until(bar.ts)
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    journal.flush()
    records = tuple(journal.records())
    assert sum(r.type == "AllocatorSampled" for r in records) == 18  # every 4 h for 3 days

    fresh = _build_kernel(feed, config, Journal(None), snapshot_every=None)
    fresh.clock.set(kernel.clock.now_ns())
    restored = attach_allocator(fresh, Allocator(settings.allocator), settings.interval_ns)
    restored.restore(records)
    assert restored.allocator.samples == governance.allocator.samples
    assert restored.allocator.reallocation_times == governance.allocator.reallocation_times[-2:]
    last = governance.allocator.last_sampled
    assert last is not None and restored.call is not None
    assert restored.call.at_ns == last + settings.interval_ns  # not 4 h after the restart
    # A node down past its round: the next one on the same schedule, never in the past.
    late = last + settings.interval_ns + hour
    again = attach_allocator(fresh, Allocator(settings.allocator), settings.interval_ns)
    again.restore(records, not_before=late)
    assert again.call is not None and again.call.at_ns == last + 2 * settings.interval_ns
