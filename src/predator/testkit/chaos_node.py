"""A real kernel under chaos, driven bar by bar as the backtest loop drives it.

``ChaosNode`` wires a kernel (``_build_kernel``) on real data (GOOG daily from the shared
data pack, or the bundled BTCUSDT 1-minute bars) with a :class:`FaultInjector`, and keeps
every event of the trading bus so a test can read what detected the fault and how.
With ``governance`` settings an allocator runs on it too (the governance faults' target).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from predator.chaos import ChaosBus, FaultInjector, PlannedFault
from predator.core.events import Event
from predator.core.rng import RngStreams
from predator.ledger import Journal
from predator.market import BarFeed, load_bars
from predator.market.bar import Bar
from predator.node import BacktestConfig
from predator.node.backtest import _announce_run, _build_kernel
from predator.node.governance import Governance, GovernanceConfig, attach_allocator
from predator.node.kernel import Kernel
from predator.strategy.allocator import Allocator
from predator.testkit import shared_data_dir

BTC = Path(__file__).resolve().parents[3] / "data" / "binanceus_BTCUSDT_1m_20230301_20230321.csv.gz"
"""The bundled real capture (the repository's data/), as make demo uses it."""
NS = 1_000_000_000


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")


@cache
def btc() -> BarFeed:
    return load_bars(BTC)


class ChaosNode:
    """A kernel with a fault injector; ``play`` publishes bars as ``Backtest._run`` does."""

    def __init__(
        self,
        feed: BarFeed,
        config: BacktestConfig,
        *,
        seed: int = 1,
        batch_size: int = 2048,
        journal: Journal | None = None,
        snapshot_every: int | None = None,
        governance: GovernanceConfig | None = None,
    ) -> None:
        self.feed = feed
        self.config = config
        self.journal = journal or Journal(None, batch_size=batch_size)
        self.kernel: Kernel = _build_kernel(
            feed, config, self.journal, snapshot_every=snapshot_every
        )
        self.events: list[Event] = []
        self.kernel.bus.subscribe(Event, self.events.append)
        self.chaos = ChaosBus()
        self.injector = FaultInjector(
            self.kernel, self.chaos, RngStreams(seed).stream("chaos.injector")
        )
        self.governance: Governance | None = None
        if governance is not None:
            allocator = Allocator(governance.allocator)
            self.governance = attach_allocator(self.kernel, allocator, governance.interval_ns)
            self.injector.govern(allocator)
        _announce_run(self.kernel, feed, config, self.journal)
        for runner in self.kernel.runners.values():
            runner.start()
        self.bars = iter(feed)
        self.played = 0
        self.last: Bar | None = None

    def play(self, count: int) -> None:
        kernel = self.kernel
        scheduler = kernel.scheduler
        for _ in range(count):
            bar = next(self.bars)
            if scheduler.next_time is not None and scheduler.next_time <= bar.ts:
                scheduler.run_until(bar.ts)
            kernel.clock.set(bar.ts)
            kernel.bus.publish(bar)
            self.played += 1
            self.last = bar

    def play_until(self, predicate: Any, limit: int) -> None:
        for _ in range(limit):
            if predicate():
                return
            self.play(1)
        raise AssertionError(f"condition not reached within {limit} bars")

    def fault(
        self,
        kind: str,
        *,
        target: str = "*",
        duration_s: int = 0,
        at_ns: int | None = None,
        **params: Any,
    ) -> PlannedFault:
        """Inject ``kind`` now (or schedule it at ``at_ns``) and schedule its clearance."""
        now = self.kernel.clock.now_ns()
        fault = PlannedFault(
            at_ns=now if at_ns is None else at_ns,
            fault_id=f"{kind}-t{len(self.chaos.log)}",
            kind=kind,
            target=target,
            duration_ns=duration_s * NS,
            params=params,
        )
        scheduler = self.kernel.scheduler
        if at_ns is None:
            self.injector.inject(fault)
        else:
            scheduler.schedule(at_ns, self.injector.inject, fault)
        if duration_s and kind != "process_crash":
            scheduler.schedule(fault.until_ns, self.injector.clear, fault.fault_id)
        return fault

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
