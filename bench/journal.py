"""Journal append throughput per store: SQLite (memory, file NORMAL / FULL), PostgreSQL.

Each row appends the same pre-built ``OrderFilled`` events (built outside the timed region)
to a fresh journal and closes it; the timer covers opening, every ``append`` (encode +
blake2b chain + list append) and the group commits (``--batch-size`` rows per transaction).
Best of ``--repeats``. The "one commit per event" rows show what group commit saves.

    .venv/bin/python bench/journal.py [--events 200000] [--repeats 3] [--postgres URL]

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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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
    args = parser.parse_args(argv)
    events = make_events(args.events)
    few = events[: args.single_commit_events]
    workdir = Path(tempfile.mkdtemp(prefix="predator-bench-journal-"))
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
    for path in workdir.iterdir():
        path.unlink()
    workdir.rmdir()

    print(
        f"# journal appends — {dt.date.today()} — {cpu_model()} — Python "
        f"{platform.python_version()} — batch size {args.batch_size}, best of {args.repeats}"
    )
    width = max(len(row[0]) for row in rows)
    print(f"{'store':<{width}}  {'events':>8}  {'seconds':>8}  {'events/s':>10}")
    for name, count, seconds, note in rows:
        if seconds is None:
            print(f"{name:<{width}}  {count:>8}  {'-':>8}  {'-':>10}  {note}")
        else:
            print(f"{name:<{width}}  {count:>8}  {seconds:>8.3f}  {count / seconds:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
