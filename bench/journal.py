"""Journal append throughput per store, and crash-recovery time for a 365-day journal.

Each row appends the same pre-built ``OrderFilled`` events (built outside the timed region)
to a fresh journal and closes it; the timer covers opening, every ``append`` (encode +
blake2b chain + list append) and the group commits (``--batch-size`` rows per transaction).
Best of ``--repeats``. The "one commit per event" rows show what group commit saves.

    .venv/bin/python bench/journal.py [--events 200000] [--repeats 3] [--postgres URL]
                                      [--skip-appends] [--skip-recovery]

Recovery: a 365-day run on 1-minute bars (525,600 bars block-bootstrapped from the
bundled real BTCUSDT capture, seed 7) is crashed 30 bars before its end with part of a
group commit unwritten; the venue matches 3 more bars alone. Then, timed per phase: load
(read the durable journal, verify its chain, discard a torn tail, read the snapshot),
recover (audit the whole journal, restore the snapshot, replay the tail, ask the venue,
reconcile) and re-warm (strategies and equity curve up to the venue's last bar) — with
the default snapshots and without any.

PostgreSQL runs against ``--postgres`` (default: $PREDATOR_TEST_POSTGRES_URL or the local
test database), each run in its own throwaway journal; if unreachable, its row says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _machine import machine
from predator.core.events import Event
from predator.execution import OrderFilled
from predator.ledger import Journal, JournalStore, MemoryStore, PostgresStore, SqliteStore
from predator.ledger.stores import Synchronous
from predator.venue import Liquidity, Side

DEFAULT_POSTGRES = os.environ.get(
    "PREDATOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def make_events(count: int) -> list[Event]:
    """``count`` fills with varying prices, sizes and ids, like a busy backtest's."""
    return [
        OrderFilled(
            ts=1_677_628_800_000_000_000 + i * 60_000_000_000,
            client_order_id=f"C-{i}",
            strategy="sma_cross",
            trade_id=f"T{i}",
            symbol="BTCUSDT",
            side=Side.BUY if i % 2 else Side.SELL,
            price=2_345_678 + (i * 7919) % 10_000,
            quantity=100_000 + i % 977,
            fee=23_456 + i % 101,
            liquidity=Liquidity.TAKER,
            leaves_quantity=0,
        )
        for i in range(count)
    ]


def timed_run(open_store: Callable[[], JournalStore], events: list[Event], batch: int) -> float:
    gc.collect()
    start = time.perf_counter()
    journal = Journal(store=open_store(), batch_size=batch)
    append = journal.append
    for event in events:
        append(event)
    journal.close()
    return time.perf_counter() - start


BUNDLED_BTC = (
    Path(__file__).resolve().parent.parent
    / "data"
    / ("binanceus_BTCUSDT_1m_20230301_20230321.csv.gz")
)


def recovery_rows(
    workdir: Path, strategies: list[tuple[str, dict[str, int]]]
) -> list[tuple[str, int, int, int, float, float, float, float]]:
    """``(case, events, snapshot seq, records replayed, load, audit, recover, re-warm s)``."""
    from predator.ledger.stores import SqliteStore
    from predator.market import load_bars
    from predator.market.synthetic import block_bootstrap
    from predator.node import (
        BacktestConfig,
        load_durable,
        prepare_resume,
        recover,
        refuse_unaudited,
    )
    from predator.node.backtest import DEFAULT_SNAPSHOT_EVERY, _announce_run, _build_kernel

    year = block_bootstrap(load_bars(BUNDLED_BTC, size_precision=5), bars=525_600, seed=7)
    bars = list(year)
    crash_at = len(bars) - 30
    rows = []
    for label, params in strategies:
        config = BacktestConfig(
            params=params,
            cash="100000",
            sizing="fraction:0.95",
            commission="0.00075",
        )
        for every in (DEFAULT_SNAPSHOT_EVERY, None):
            path = workdir / f"recovery-{len(rows)}.sqlite"
            journal = Journal(path, batch_size=2048)
            kernel = _build_kernel(year, config, journal, snapshot_every=every)
            _announce_run(kernel, year, config, journal)
            for runner in kernel.runners.values():
                runner.start()
            for bar in bars[:crash_at]:
                kernel.clock.set(bar.ts)
                kernel.bus.publish(bar)
            journal.store.close()  # the crash: the pending group commit is lost
            exchange = kernel.exchange
            for bar in bars[crash_at : crash_at + 3]:
                kernel.clock.set(bar.ts)
                exchange.on_bar(bar)
            gc.collect()
            start = time.perf_counter()
            store = SqliteStore(path)
            durable = load_durable(store)
            store.close()
            loaded = time.perf_counter()
            refuse_unaudited(durable.records, chain_verified=True)
            audited = time.perf_counter()
            journal = Journal(path, batch_size=2048)
            fresh = _build_kernel(year, config, journal, exchange=exchange, snapshot_every=every)
            last = exchange.last_bar(year.instrument.symbol)
            assert last is not None
            fresh.clock.set(last.ts)
            report = recover(durable, exchange=exchange, kernel=fresh, audited=True)
            recovered = time.perf_counter()
            prepare_resume(fresh, year, config, journal)
            warmed = time.perf_counter()
            assert report.reconciled, report.mismatches
            journal.close()
            name = f"{label}, " + (f"snapshot every {every}" if every else "no snapshots")
            rows.append(
                (
                    name,
                    report.durable_seq,
                    report.snapshot_seq,
                    report.records_replayed,
                    loaded - start,
                    audited - loaded,
                    recovered - audited,
                    warmed - recovered,
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; best is kept")
    parser.add_argument("--batch-size", type=int, default=2048, help="rows per group commit")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL URL")
    parser.add_argument(
        "--single-commit-events",
        type=int,
        default=2_000,
        help="events for the one-commit-per-event rows (they are slow)",
    )
    parser.add_argument("--skip-appends", action="store_true", help="no append rows")
    parser.add_argument("--skip-recovery", action="store_true", help="no recovery rows")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="predator-bench-journal-"))
    if not args.skip_appends:
        appends(args, workdir)
    if not args.skip_recovery:
        strategies = [
            ("sma_cross 60/240", {"fast": 60, "slow": 240}),
            ("sma_cross 10/30", {"fast": 10, "slow": 30}),
        ]
        rows = recovery_rows(workdir, strategies)
        cpu = machine()["cpu"]
        print(f"\n# crash recovery, 365 days of 1-minute bars — {dt.date.today()} — {cpu}")
        width = max(len(row[0]) for row in rows)
        print(
            f"{'run':<{width}}  {'events':>7}  {'snapshot':>8}  {'replayed':>8}  {'load s':>6}"
            f"  {'audit s':>7}  {'recover s':>9}  {'re-warm s':>9}  {'total s':>7}"
        )
        for name, events, snap, replayed, load, audit, rec, warm in rows:
            total = load + audit + rec + warm
            print(
                f"{name:<{width}}  {events:>7}  {snap:>8}  {replayed:>8}  {load:>6.3f}"
                f"  {audit:>7.3f}  {rec:>9.3f}  {warm:>9.3f}  {total:>7.3f}"
            )
        print(
            "load: read + chain check + snapshot; audit: the whole journal (the node's gate);"
            " recover: snapshot restore + tail replay + venue reconciliation"
        )
    for path in workdir.iterdir():
        path.unlink()
    workdir.rmdir()
    return 0


def appends(args: argparse.Namespace, workdir: Path) -> None:
    events = make_events(args.events)
    few = events[: args.single_commit_events]
    runs = 0

    def sqlite_file(synchronous: Synchronous) -> Callable[[], JournalStore]:
        def open_store() -> JournalStore:
            nonlocal runs
            runs += 1
            return SqliteStore(workdir / f"run{runs}.sqlite", synchronous=synchronous)

        return open_store

    dropped: list[PostgresStore] = []

    def postgres() -> JournalStore:
        store = PostgresStore(args.postgres, journal=f"bench_{uuid.uuid4().hex[:12]}")
        dropped.append(PostgresStore(args.postgres, journal=store.journal))
        return store

    rows: list[tuple[str, int, float | None, str]] = []
    cases: list[tuple[str, Callable[[], JournalStore], list[Event], int]] = [
        ("sqlite :memory: (backtest default)", lambda: SqliteStore(":memory:"), events, 0),
        ("sqlite file, synchronous=NORMAL", sqlite_file("NORMAL"), events, 0),
        ("sqlite file, synchronous=FULL", sqlite_file("FULL"), events, 0),
        ("memory store (in-process)", MemoryStore, events, 0),
        ("postgresql, group commit", postgres, events, 0),
        ("sqlite file FULL, one commit per event", sqlite_file("FULL"), few, 1),
        ("postgresql, one commit per event", postgres, few, 1),
    ]
    for name, opener, chosen, batch in cases:
        try:
            best = min(
                timed_run(opener, chosen, batch or args.batch_size) for _ in range(args.repeats)
            )
            rows.append((name, len(chosen), best, ""))
        except Exception as exc:  # a missing server is a row, not a crash
            rows.append((name, len(chosen), None, f"{type(exc).__name__}: {exc}".splitlines()[0]))
        finally:
            for store in dropped:
                store.drop()
            dropped.clear()

    print(
        f"# journal appends — {dt.date.today()} — {machine()['cpu']} — Python "
        f"{platform.python_version()} — batch size {args.batch_size}, best of {args.repeats}"
    )
    width = max(len(row[0]) for row in rows)
    print(f"{'store':<{width}}  {'events':>8}  {'seconds':>8}  {'events/s':>10}")
    for name, count, seconds, note in rows:
        if seconds is None:
            print(f"{name:<{width}}  {count:>8}  {'-':>8}  {'-':>10}  {note}")
        else:
            print(f"{name:<{width}}  {count:>8}  {seconds:>8.3f}  {count / seconds:>10,.0f}")


if __name__ == "__main__":
    sys.exit(main())
