"""Issue 6's exhaustive crash test: crash the node at every journal event, recover, finish.

A real run (GOOG daily, SMA 10/30, commission 0.002: 530+ journal events, 132 fills) is
crashed after each journal event in turn. The crash is faithful: from that instant the
node hears and sends nothing (a bus interceptor drops everything), its memory is gone,
its journal keeps only what was flushed (group commits of 16; the pending batch is
lost), and the venue keeps its state. A fresh node then recovers from the durable
journal and the venue, re-warms its strategy, finishes the run, and must end with the
same positions, cash, PnL and trades as the uncrashed run, every venue trade applied
exactly once.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from predator.core.events import Event
from predator.ledger import Journal
from predator.ledger.stores import SqliteStore, open_store
from predator.market import BarFeed, load_bars
from predator.market.synthetic import block_bootstrap
from predator.node import (
    BacktestConfig,
    BacktestResult,
    StrategySpec,
    load_durable,
    rebuild_history,
    recover,
    resume_run,
)
from predator.node.backtest import _announce_run, _build_kernel, _finish_run
from predator.testkit import shared_data_dir
from predator.testkit.crash import Crash
from predator.validation import audit

BATCH = 16
SNAPSHOT_EVERY = 40
"""Journal events between snapshots: crashes before the first one replay from the start,
later ones restore the newest snapshot the durable journal covers and replay the rest."""
CONFIG = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")


def _feed() -> BarFeed:
    return load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")


def _final(result_kernel: Any) -> tuple[Any, ...]:
    symbol = result_kernel.instrument.symbol
    pools = tuple(
        (
            name,
            portfolio.cash,
            portfolio.position_quantity(symbol),
            portfolio.realized_pnl,
            tuple(
                (t.size, t.entry_ts, t.exit_ts, t.entry_price, t.exit_price, t.pnl, t.fees)
                for t in portfolio.closed_trades
            ),
        )
        for name, portfolio in result_kernel.portfolios.items()
    )
    curve = result_kernel.curve
    return (
        pools,
        tuple(curve.values),  # the equity curve, re-warmed bars included
        curve.exposed_bars,
        len(result_kernel.closes),
        result_kernel.fills,
        tuple(result_kernel.kill_switch.tripped_scopes()),
        tuple((name, runner.stopped is None) for name, runner in result_kernel.runners.items()),
        tuple((name, b.state.value) for name, b in result_kernel.breakers.items()),
    )


def _open(where: Path | str) -> Journal:
    if isinstance(where, Path):
        return Journal(where, batch_size=BATCH)
    return Journal.open(where, batch_size=BATCH)


def _store(where: Path | str) -> Any:
    return SqliteStore(where) if isinstance(where, Path) else open_store(where)


def _run(
    path: Path | str,
    crash_at: int | None,
    feed: BarFeed | None = None,
    config: BacktestConfig = CONFIG,
) -> tuple[tuple[Any, ...], dict[str, int]]:
    feed = feed or _feed()
    journal = _open(path)
    kernel = _build_kernel(feed, config, journal, snapshot_every=SNAPSHOT_EVERY)
    crash = None
    if crash_at is not None:
        crash = Crash(journal, crash_at)
        kernel.bus.subscribe(Event, crash.on_event)
        kernel.bus.interceptor = crash
    _announce_run(kernel, feed, config, journal)
    for runner in kernel.runners.values():
        runner.start()
    for bar in feed:
        if crash is not None and crash.dead:
            break
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    if crash is None or not crash.dead:
        result: BacktestResult = _finish_run(kernel, config, journal, None, len(feed))
        if crash is None or not crash.dead:  # it may also die while finishing
            journal.close()
            return _final(kernel), {"fills": result.fills}
    # The crash: drop the unflushed batch, keep the venue.
    exchange = kernel.exchange
    journal.store.close()
    store = _store(path)
    durable = load_durable(store)
    store.close()
    journal = _open(path)
    fresh = _build_kernel(feed, config, journal, exchange=exchange, snapshot_every=SNAPSHOT_EVERY)
    if durable.durable_seq == 0:  # nothing survived: the journal starts again
        _announce_run(fresh, feed, config, journal)
    last = exchange.last_bar(feed.instrument.symbol)
    if last is not None:  # the node died after the venue saw a bar
        fresh.clock.set(last.ts)
    report = recover(durable, exchange=exchange, kernel=fresh)
    assert report.reconciled, report.mismatches
    if not report.completed:  # a run that completed before the crash is not run again
        resume_run(fresh, feed, config, journal)
    else:
        rebuild_history(fresh, feed)
    journal.close()
    trade_ids = [t for order in fresh.execution.orders.values() for t in order.trade_ids]
    assert len(trade_ids) == len(set(trade_ids))  # no fill applied twice
    assert sorted(trade_ids) == sorted(f.trade_id for f in exchange.trade_log)  # none lost
    for portfolio in fresh.portfolios.values():
        portfolio.check_balance_equation()
    recovered = _open(path)
    findings = audit(recovered.records()).findings
    recovered.close()
    assert findings == [], findings[:3]  # the recovered journal audits clean
    return _final(fresh), {"durable": report.durable_seq, "snapshot_seq": report.snapshot_seq}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Any, ...], int]:
    path = tmp_path_factory.mktemp("reference") / "journal.sqlite"
    final, _ = _run(path, None)
    journal = Journal(path)
    events = journal.last_seq
    fills = sum(1 for r in journal.records() if r.type == "OrderFilled")
    journal.close()
    assert events >= 500 and fills >= 50
    return final, events


@pytest.mark.slow
def test_a_crash_at_every_journal_event_recovers_to_the_uncrashed_final_state(
    reference: tuple[tuple[Any, ...], int], tmp_path: Path
) -> None:
    expected, events = reference
    from_snapshot = 0
    for at in range(1, events + 1):
        path = tmp_path / f"crash-{at}.sqlite"
        final, info = _run(path, at)
        assert final == expected, f"crash after journal event {at}"
        if info.get("snapshot_seq"):
            assert info["snapshot_seq"] <= info["durable"]
            from_snapshot += 1
        path.unlink()
    # Most crash points recovered from a snapshot, the early ones from the start.
    assert events // 2 < from_snapshot < events


def _btc_head(bars: int) -> BarFeed:
    """The first ``bars`` bars of the real BTC 1-minute capture (a block bootstrap whose one
    block is the capture itself replays it exactly)."""
    feed = load_bars(
        shared_data_dir() / "binanceus_BTCUSDT_1m_20230301_20230321.csv.gz", size_precision=5
    )
    return block_bootstrap(feed, bars=bars, seed=0, block=len(feed))


MULTI = BacktestConfig(
    strategies=(
        StrategySpec(strategy="sma_cross", allocation="0.5"),
        StrategySpec(strategy="flood", allocation="0.5"),
    ),
    cash="200000",
    sizing="fraction:0.95",
)


@pytest.mark.slow
def test_two_strategies_one_of_them_killed_recover_at_crash_points_across_the_run(
    tmp_path: Path,
) -> None:
    """sma_cross beside flood (rate-limited, breaker opening, killed): crashed at 40 points
    spread over the journal, before and after the kill, recovery restores the same pools,
    curve, kill switch, stopped strategy and breakers as the uncrashed run."""
    feed = _btc_head(3000)
    expected, _ = _run(tmp_path / "reference.sqlite", None, feed, MULTI)
    reference = Journal(tmp_path / "reference.sqlite")
    records = list(reference.records())
    reference.close()
    events = len(records)
    kill_seq = next(r.seq for r in records if r.type == "KillSwitchTripped")
    assert "strategy:flood" in expected[5]  # the flood's kill switch tripped
    points = sorted(
        {*range(1, events + 1, max(1, events // 30)), kill_seq - 1, kill_seq, kill_seq + 1, events}
    )
    for at in points:
        final, _info = _run(tmp_path / f"crash-{at}.sqlite", at, feed, MULTI)
        assert final == expected, f"crash after journal event {at} of {events}"


POSTGRES = os.environ.get("PREDATOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.mark.slow
@pytest.mark.postgres
def test_the_same_crashes_recover_on_the_postgresql_journal(
    reference: tuple[tuple[Any, ...], int],
) -> None:
    """Against the real server on 127.0.0.1:5432: every third event index (the SQLite test
    above takes every index; each crash point here is a fresh schema and a whole run).

    The node commits each order before the venue hears of it (write-ahead), a server round
    trip per order. The crash here is the node process dying while the server lives, so
    the session runs with ``synchronous_commit=off``: a committed batch is visible to the
    next session at once (only a server crash could lose it), without waiting for the
    server's fsync of each of the ~25,000 commits of this test.
    """
    from predator.ledger.postgres_store import PostgresStore

    expected, events = reference
    run_id = uuid.uuid4().hex[:8]
    for at in range(1, events + 1, 3):
        url = f"{POSTGRES}?journal=crash_{run_id}_{at}&options=-c%20synchronous_commit%3Doff"
        try:
            final, _info = _run(url, at)
            assert final == expected, f"crash after journal event {at} (PostgreSQL)"
        finally:
            store = PostgresStore(url)
            store.drop()
            store.close()
