"""The scenario library, market transforms on real bars, crash recovery and determinism.

Every scenario is documented (what it injects, what detects it, what handled means);
market scenarios keep prices exact and OHLC-consistent; a process crash requested by the
chaos engine is survived by recovery; a chaos run is a pure function of its seed.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import pytest

from predator.chaos import (
    SCENARIO_NAMES,
    ChaosBus,
    ChaosConfig,
    ChaosEngine,
    FaultInjector,
    ScenarioLibrary,
)
from predator.core.events import Message
from predator.core.rng import RngStreams
from predator.ledger import Journal
from predator.ledger.stores import SqliteStore
from predator.market import BarFeed
from predator.node import BacktestConfig, load_durable, recover, resume_run
from predator.node.backtest import _announce_run, _build_kernel
from predator.risk.emergency_stop import KillSwitchTripped
from predator.risk.protections import ProtectionLocked
from predator.risk.risk_engine import RiskDecision
from predator.testkit.chaos_node import NS, ChaosNode, btc, goog

GOOG_SMA = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")
LIBRARY = ScenarioLibrary()


def _ohlc_ok(feed: BarFeed) -> None:
    for bar in feed:
        assert 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert all(isinstance(p, int) for p in (bar.open, bar.high, bar.low, bar.close))


def test_every_scenario_is_named_grouped_and_documented() -> None:
    assert LIBRARY.names() == SCENARIO_NAMES
    groups = {LIBRARY.get(name).group for name in SCENARIO_NAMES}
    assert groups == {"market", "infrastructure", "exchange", "strategy", "governance"}
    for name in SCENARIO_NAMES:
        scenario = LIBRARY.get(name)
        assert scenario.description and scenario.handled and scenario.detected_by
        if scenario.mode == "faults":
            assert LIBRARY.faults(name, start_ns=0, targets=["s"]), name
    # Governance scenarios on the allocator say they need it.
    assert LIBRARY.get("scoring_corruption").requires == ("allocator",)


def test_flash_crash_falls_30_percent_in_minutes_then_rebounds_partly() -> None:
    feed = btc()
    start = feed.timestamps()[600]
    crashed = LIBRARY.transform("flash_crash", feed, start)
    _ohlc_ok(crashed)
    real, new = feed.closes(), crashed.closes()
    assert real[:600] == new[:600]
    bottom = Fraction(new[609], real[609])
    assert abs(bottom - Fraction(7, 10)) < Fraction(1, 1000)
    later = Fraction(new[700], real[700])
    assert abs(later - Fraction(85, 100)) < Fraction(1, 1000)


def test_bear_market_and_mania_transforms() -> None:
    feed = goog()
    start = feed.timestamps()[100]
    bear = LIBRARY.transform("bear_market", feed, start, {"days": 90})
    _ohlc_ok(bear)
    assert Fraction(bear.closes()[400], feed.closes()[400]) < Fraction(61, 100)
    mania = LIBRARY.transform("parabolic_mania", btc(), btc().timestamps()[100], {"days": 1})
    _ohlc_ok(mania)

    def spread(closes: list[int]) -> Fraction:
        moves = [abs(Fraction(b - a, a)) for a, b in pairwise(closes[100:1401])]
        return sum(moves, Fraction(0)) / len(moves)

    ratio = spread(mania.closes()) / spread(btc().closes())
    assert 4 < ratio < 6


def test_flash_crash_trips_loss_protections_and_no_order_is_approved_on_a_frozen_feed() -> None:
    config = BacktestConfig(params={"fast": 50, "slow": 200}, cash="1000000", risk={})
    # Find a moment the strategy has held a long position for a while.
    probe = ChaosNode(btc(), config)
    held = [0]

    def long_for_a_while() -> bool:
        long = probe.kernel.portfolios["sma_cross"].position_quantity("BTCUSDT") > 0
        held[0] = held[0] + 1 if long else 0
        return held[0] >= 30

    probe.play_until(long_for_a_while, 3000)
    start = probe.last.ts + 60 * NS
    node = ChaosNode(LIBRARY.transform("flash_crash", btc(), start), config)
    node.play(probe.played)
    frozen_from = start + 5 * 60 * NS
    node.fault("frozen_market_data", at_ns=frozen_from, duration_s=1800, target="market_data")
    node.play(150)

    reacted = [e for e in node.of(ProtectionLocked) if e.ts >= start]
    reacted += [e for e in node.of(KillSwitchTripped) if e.ts >= start]
    assert reacted, "a loss protection reacts to the crash"
    frozen = range(frozen_from, frozen_from + 1800 * NS)
    assert [d for d in node.of(RiskDecision) if d.ts in frozen and d.approved] == []


def test_over_aggression_and_cro_loss_scenarios_plan_their_faults() -> None:
    flood = LIBRARY.faults("over_aggression", start_ns=5, targets=["b", "a"])
    assert [(f.kind, f.target, f.params["multiplier"]) for f in flood] == [("order_flood", "a", 10)]
    cro = LIBRARY.faults("cro_loss", start_ns=5, targets=["a"])
    assert [(f.kind, f.target) for f in cro] == [("component_freeze", "cro_heartbeat")]
    with pytest.raises(KeyError, match="did you mean 'ghost_fill'"):
        LIBRARY.get("ghost_fil")


class _Dead:
    """The crash: from now on the node hears nothing and says nothing."""

    def intercept(self, message: Message, deliver: object) -> None:
        return None


def test_process_crash_requested_by_chaos_is_survived_by_recovery(tmp_path: Path) -> None:
    feed, path = goog(), tmp_path / "journal.sqlite"
    node = ChaosNode(feed, GOOG_SMA, journal=Journal(path, batch_size=16))
    node.play(200)
    (crash,) = LIBRARY.faults("process_crash", start_ns=node.kernel.clock.now_ns(), targets=[])
    node.injector.inject(crash)
    assert node.injector.crash_requested == crash
    # The campaign's part: the node dies (its pending batch is lost), the venue lives.
    node.kernel.bus.interceptor = _Dead()
    exchange = node.kernel.exchange
    node.journal.store.close()
    store = SqliteStore(path)
    durable = load_durable(store)
    store.close()
    journal = Journal(path, batch_size=16)
    fresh = _build_kernel(feed, GOOG_SMA, journal, exchange=exchange, snapshot_every=None)
    if durable.durable_seq == 0:
        _announce_run(fresh, feed, GOOG_SMA, journal)
    fresh.clock.set(exchange.last_bar(feed.instrument.symbol).ts)
    report = recover(durable, exchange=exchange, kernel=fresh)
    assert report.reconciled, report.mismatches
    node.injector.crash_handled()
    assert node.injector.crash_requested is None
    resume_run(fresh, feed, GOOG_SMA, journal)
    journal.close()
    applied = [t for order in fresh.execution.orders.values() for t in order.trade_ids]
    assert sorted(applied) == sorted(f.trade_id for f in exchange.trade_log)
    assert len(applied) == len(set(applied))


_QUIET = ChaosConfig.from_dict(
    {
        "faults": {
            kind: {"rate_per_day": 0.05}
            for kind in (
                "bus_delay",
                "bus_duplicate",
                "api_timeout",
                "reject_storm",
                "partial_fill_storm",
                "strategy_hang",
                "clock_skew",
            )
        }
    }
)


def _chaos_run(seed: int) -> tuple[list[object], str]:
    feed = goog()
    node = ChaosNode(feed, GOOG_SMA, seed=seed)
    engine = ChaosEngine(
        _QUIET, seed=seed, start_ns=feed.first_ts, end_ns=feed.last_ts, targets=["sma_cross"]
    )
    # A second injector is not needed: attach the engine to the node's own.
    engine.attach(node.kernel, node.injector)
    node.play(600)
    assert engine.injected > 0
    return list(engine.plan), node.journal.digest


def test_same_seed_same_plan_and_journal_digest_different_seed_different_plan() -> None:
    plan_a, digest_a = _chaos_run(3)
    plan_b, digest_b = _chaos_run(3)
    assert plan_a == plan_b and digest_a == digest_b
    plan_c, _ = _chaos_run(4)
    assert plan_c != plan_a


def test_injector_composes_with_an_existing_interceptor() -> None:
    node = ChaosNode(goog(), GOOG_SMA)
    seen: list[str] = []

    class Outer:
        def intercept(self, message: Message, deliver):  # type: ignore[no-untyped-def]
            seen.append(type(message).__name__)
            return deliver(message)

    node.kernel.bus.interceptor = Outer()
    injector = FaultInjector(node.kernel, ChaosBus(), RngStreams(1).stream("chaos.injector"))
    assert node.kernel.bus.interceptor is injector
    node.play(3)
    assert seen.count("Bar") == 3
