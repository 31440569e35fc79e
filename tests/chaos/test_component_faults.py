"""Component, market-data and strategy faults on a real kernel (BTCUSDT 1-minute bars).

A silent CRO halts execution; stale data is refused; a flooding, failing or hanging
strategy is stopped while the others keep trading.
"""

from __future__ import annotations

from collections import Counter

from predator.execution.heartbeat import ExecutionHalted
from predator.execution.order import OrderSubmitted
from predator.node import BacktestConfig, StrategySpec
from predator.risk.circuit_breaker import BreakerState, BreakerStateChanged
from predator.risk.emergency_stop import KillSwitchTripped
from predator.risk.risk_engine import RiskDecision
from predator.strategy.runner import StrategyFailed
from predator.testkit.chaos_node import NS, ChaosNode, btc

BTC_SMA = BacktestConfig(params={"fast": 5, "slow": 15}, cash="1000000", risk={})
TWO = BacktestConfig(
    strategies=(
        StrategySpec(strategy="sma_cross", params={"fast": 5, "slow": 15}),
        StrategySpec(strategy="ema_cross"),
    ),
    cash="1000000",
    risk={},
)
# A strategy that asks to trade on every bar (one unit, well under the rate limit): it
# probes whether the risk layer approves orders on the data the node sees.
PROBE = BacktestConfig(
    strategies=(StrategySpec(strategy="flood", params={"orders_per_bar": 1}),),
    cash="1000000",
    risk={},
)


def test_cro_loss_halts_execution_within_the_heartbeat_timeout() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(100)
    timeout = node.kernel.execution.heartbeat_timeout_ns
    frozen_at = node.kernel.clock.now_ns()
    fault = node.fault("component_freeze", target="cro_heartbeat", duration_s=3600)
    node.play_until(lambda: node.of(ExecutionHalted), 120)

    halted = node.of(ExecutionHalted)[0]
    assert halted.reason == "CRO heartbeat lost"
    assert node.injector.counts[fault.fault_id]["silenced"] >= 1
    # Fail closed: no order reaches the venue once the CRO's last word is older than the
    # timeout, and the halt names that last word.
    last = halted.last_heartbeat_ts
    assert last is not None and last <= frozen_at
    late = [e for e in node.of(OrderSubmitted) if e.ts > last + timeout]
    assert late == []
    node.play(30)
    assert [e for e in node.of(OrderSubmitted) if e.ts > frozen_at] == []


def test_frozen_market_data_repeating_is_refused_as_stale() -> None:
    node = ChaosNode(btc(), PROBE)
    node.play(10)
    approved_before = node.kernel.risk.approved
    assert approved_before > 0
    frozen_at = node.kernel.clock.now_ns()
    node.fault("frozen_market_data", target="market_data", duration_s=1800, mode="repeat")
    node.play(20)

    # A repeated bar is older than one already seen: the kernel's market-data guard
    # stops it before anyone uses it, and says so; nothing is approved on stale data.
    rejected = [e for e in node.events if type(e).__name__ == "MarketDataRejected"]
    assert len(rejected) >= 19 and all("not after" in e.reason for e in rejected)
    stale_limit = node.kernel.risk.limits.stale_data_ns
    decisions = [d for d in node.of(RiskDecision) if d.ts > frozen_at + stale_limit]
    assert all(not d.approved for d in decisions)
    assert all(d.check == "stale_data" for d in decisions)


def test_frozen_market_data_stopping_approves_nothing() -> None:
    node = ChaosNode(btc(), PROBE)
    node.play(10)
    frozen_at = node.kernel.clock.now_ns()
    fault = node.fault("frozen_market_data", target="market_data", duration_s=1800)
    node.play(20)
    assert node.injector.counts[fault.fault_id]["withheld"] == 20
    assert [d for d in node.of(RiskDecision) if d.ts > frozen_at and d.approved] == []


def test_a_frozen_feed_stays_frozen_under_other_market_data_faults() -> None:
    # Found by campaign seed 5: a bus_duplicate fault on market data delivered bars
    # through a freeze (it had the first say), and the node traded on them.
    node = ChaosNode(btc(), PROBE)
    node.play(10)
    frozen_at = node.kernel.clock.now_ns()
    closes = len(node.kernel.closes)
    freeze = node.fault("frozen_market_data", target="market_data", duration_s=1800)
    node.fault("bus_duplicate", target="market_data", duration_s=1800, probability=1.0)
    node.play(20)
    assert node.injector.counts[freeze.fault_id]["withheld"] == 20
    assert len(node.kernel.closes) == closes  # no bar reached the node
    assert [d for d in node.of(RiskDecision) if d.ts > frozen_at and d.approved] == []


def test_over_aggression_is_rate_limited_then_breaker_then_killed() -> None:
    node = ChaosNode(btc(), TWO)
    node.play(30)
    fault = node.fault("order_flood", target="sma_cross", duration_s=1800, multiplier=40)
    node.play(40)

    assert node.injector.counts[fault.fault_id]["flooded"] >= 40
    denials = Counter(d.check for d in node.of(RiskDecision) if not d.approved)
    assert denials["rate_limit"] >= 5
    opened = [e for e in node.of(BreakerStateChanged) if e.state is BreakerState.OPEN]
    assert any(e.scope == "strategy:sma_cross" for e in opened)
    kills = [e for e in node.of(KillSwitchTripped) if e.scope == "strategy:sma_cross"]
    assert kills and kills[0].trigger == "breaker_trips"
    report = node.kernel.strategy_report()
    assert report["sma_cross"]["state"] == "killed"
    assert report["ema_cross"]["state"] == "active"  # the other strategy lives on


def test_strategy_exception_stops_only_that_strategy() -> None:
    node = ChaosNode(btc(), TWO)
    node.play(30)
    node.fault("strategy_exception", target="sma_cross")
    node.play(200)
    failed = node.of(StrategyFailed)
    assert [(f.strategy, f.where) for f in failed] == [("sma_cross", "on_bar")]
    assert "InjectedStrategyError" in failed[0].error
    report = node.kernel.strategy_report()
    assert report["sma_cross"]["state"] == "stopped"
    assert report["ema_cross"]["state"] == "active"
    assert report["ema_cross"]["orders_sent"] > 0


def test_strategy_hang_is_treated_as_a_failure() -> None:
    node = ChaosNode(btc(), TWO)
    node.play(30)
    node.fault("strategy_hang", target="ema_cross", overrun_s=120)
    node.play(5)
    failed = node.of(StrategyFailed)
    assert [f.strategy for f in failed] == ["ema_cross"]
    assert "StrategyOverrun" in failed[0].error
    assert node.kernel.strategy_report()["sma_cross"]["state"] == "active"


def test_silent_death_mutes_a_strategy_more_and_more() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    fault = node.fault("strategy_silence", target="sma_cross", duration_s=200 * 60)
    node.play(200)
    muted = node.injector.counts[fault.fault_id]["muted"]
    assert 50 < muted < 200  # a slow decay, not a sudden stop
    assert node.of(StrategyFailed) == []  # silent: nothing in the system raises


def test_clock_skew_is_recorded_as_not_applicable_in_simulation() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(2)
    fault = node.fault("clock_skew", target="clock", duration_s=60)
    assert node.injector.not_applicable == [fault]
    injected = node.chaos.log[-1]
    assert "not_applicable" in injected.detail  # type: ignore[attr-defined]
    assert fault.fault_id not in node.injector.active


def test_memory_leak_lag_grows_until_the_stale_data_guard_trips() -> None:
    from predator.chaos import ScenarioLibrary

    node = ChaosNode(btc(), PROBE)
    node.play(10)
    start = node.kernel.clock.now_ns()
    plan = ScenarioLibrary().faults("memory_leak", start_ns=start + 1, targets=["flood"])
    for planned in plan:
        node.kernel.scheduler.schedule(planned.at_ns, node.injector.inject, planned)
        node.kernel.scheduler.schedule(planned.until_ns, node.injector.clear, planned.fault_id)
    node.play(int((plan[-1].until_ns - start) // (60 * NS)))
    stale = [d for d in node.of(RiskDecision) if d.check == "stale_data"]
    assert stale, "the lag passed the stale-data limit and the guard refused"
    limit = node.kernel.risk.limits.stale_data_ns
    first_lag_past_limit = next(p for p in plan if p.params["min_delay_s"] * NS > limit)
    assert stale[0].ts >= first_lag_past_limit.at_ns


def test_cro_loss_is_declared_at_the_timeout_without_an_order() -> None:
    # Found by the chaos tests: the halt used to show only when the next order came.
    node = ChaosNode(btc(), BTC_SMA)
    node.play(100)
    node.fault("component_freeze", target="cro_heartbeat", duration_s=3600)
    node.play_until(lambda: node.of(ExecutionHalted), 120)
    halted = node.of(ExecutionHalted)[0]
    assert halted.last_heartbeat_ts is not None
    timeout = node.kernel.execution.heartbeat_timeout_ns
    assert halted.ts <= halted.last_heartbeat_ts + timeout + 60 * NS
