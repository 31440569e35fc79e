"""The governance scenarios on real kernels (BTCUSDT 1-minute bars): each is injected,
detected by the allocator (or the protections) and handled.

Three trend strategies in two engines, each in its own pool, an allocator every 4 hours
of kernel time on its last 12 rounds (the campaign's settings); the faults strike once
it is warmed up (day 4). ``tail_loss`` runs on two pools with a tight drawdown
protection; the last test runs the two governance scenarios in a short campaign.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from predator.campaign import Campaign, CampaignConfig
from predator.chaos import ScenarioLibrary
from predator.execution.order import OrderSubmitted
from predator.market import load_bars
from predator.node import BacktestConfig, StrategySpec
from predator.node.governance import GovernanceConfig
from predator.portfolio.transfers import CapitalTransferred
from predator.risk.emergency_stop import KillSwitchTripped
from predator.risk.protections import ProtectionLocked
from predator.risk.risk_engine import RiskDecision
from predator.strategy.allocator import (
    DAY_NS,
    AllocationThrottled,
    AllocatorConfig,
    AllocatorSampled,
    CapitalReallocated,
    ScoreRejected,
)
from predator.testkit.chaos_node import BTC, ChaosNode, btc

HOUR_NS = DAY_NS // 24
DAY_BARS = 1440
GOVERNED = BacktestConfig(
    strategies=(
        StrategySpec(
            strategy="sma_cross", name="trend_sma", engine="trend", params={"fast": 60, "slow": 240}
        ),
        StrategySpec(
            strategy="ema_cross", name="trend_ema", engine="trend", params={"fast": 30, "slow": 120}
        ),
        StrategySpec(
            strategy="sma_cross", name="alt_sma", engine="alt", params={"fast": 20, "slow": 90}
        ),
    ),
    cash="300000",
    commission="0.001",
)
GOVERNANCE = GovernanceConfig(interval_ns=4 * HOUR_NS, allocator=AllocatorConfig(window=12))
CHAOS_TOML = Path(__file__).resolve().parents[1] / "campaign" / "governance_chaos.toml"


def _governed() -> ChaosNode:
    node = ChaosNode(btc(), GOVERNED, governance=GOVERNANCE)
    node.play(4 * DAY_BARS)  # warmed up: 13 rounds sampled, first reallocations made
    assert node.of(CapitalReallocated)
    return node


def _within(events: list[Any], low: int, high: int) -> list[Any]:
    return [e for e in events if low <= e.ts < high]


def test_corrupt_scores_are_rejected_and_no_capital_moves_until_they_clear() -> None:
    node = _governed()
    fault = node.fault("score_corruption", target="allocator", duration_s=86_400)
    node.play(3 * DAY_BARS)
    low, high = fault.at_ns, fault.until_ns

    rejected = _within(node.of(ScoreRejected), low, high)
    reasons = Counter(e.reason.split(":")[0] for e in rejected)
    assert set(reasons) == {"not_finite", "out_of_range"}, reasons
    assert {e.score for e in rejected} >= {"nan", "inf", "-inf", "1e+300"}
    rounds = _within(node.of(AllocatorSampled), low, high)
    assert len(rounds) == 6 and len(rejected) >= len(rounds)  # every round refused
    assert _within(node.of(CapitalTransferred), low, high) == []
    assert _within(node.of(CapitalReallocated), low, high) == []
    assert node.injector.counts[fault.fault_id]["scores_corrupted"] >= len(rejected)
    # Journaled, not only published.
    node.journal.flush()
    journaled = [r for r in node.journal.records() if r.type == "ScoreRejected"]
    assert len(journaled) == len(node.of(ScoreRejected))
    # Once the fault clears the allocator scores and moves capital again.
    after = [e for e in node.of(CapitalReallocated) if e.ts >= high]
    assert after and all(e.scores and all(abs(s) <= 1e6 for s in e.scores.values()) for e in after)
    assert not [e for e in node.of(ScoreRejected) if e.ts >= high and "not_finite" in e.reason]


def test_the_overfitting_loop_is_not_chased_more_than_once_a_day() -> None:
    node = _governed()
    fault = node.fault(
        "overfit_scoring", target="allocator", duration_s=3 * 86_400, swing=20.0,
        strategy="trend_ema",
    )  # fmt: skip
    node.play(4 * DAY_BARS)
    low, high = fault.at_ns, fault.until_ns
    assert node.injector.counts[fault.fault_id]["scores_overfitted"] >= 12

    # The jump check refuses the swings of the in-sample score.
    jumps = [e for e in _within(node.of(ScoreRejected), low, high) if e.reason.startswith("jump")]
    assert len(jumps) >= 3 and {e.strategy for e in jumps} == {"trend_ema"}
    # The guard declines the rounds in between: at most one reallocation in any 24 h.
    throttled = Counter(e.reason for e in _within(node.of(AllocationThrottled), low, high))
    assert throttled["min_interval"] >= 6, throttled
    moves = [e.ts for e in _within(node.of(CapitalReallocated), low, high)]
    assert len(moves) <= 3
    times = [e.ts for e in node.of(CapitalReallocated)]
    assert all(b - a >= DAY_NS for a, b in pairwise(times))
    # What the guard does not stop (honestly): a level that persists for a round passes
    # the jump check, so the inflated strategy is raised, but each move is bounded by
    # the allocator's max_move_fraction (10 % of the pools' equity).
    for event in _within(node.of(CapitalReallocated), low, high):
        equity = node.of(AllocatorSampled)
        total = sum(next(s for s in reversed(equity) if s.ts <= event.ts).equity.values())
        assert event.moved <= total // 10


def test_silent_death_stops_the_strategy_and_the_allocator_keeps_judging_it() -> None:
    node = _governed()
    fault = node.fault("strategy_silence", target="trend_ema", duration_s=7 * 86_400)
    node.play(7 * DAY_BARS)
    low, high = fault.at_ns, fault.until_ns
    muted = node.injector.counts[fault.fault_id]["muted"]
    assert muted > 5000

    def orders(name: str, start: int, end: int) -> int:
        return sum(1 for e in _within(node.of(OrderSubmitted), start, end) if e.strategy == name)

    # It trades less and less (its muted share of bars grows to all); the others go on.
    before, last = (low - 3 * DAY_NS, low), (high - 3 * DAY_NS, high)
    assert 3 * orders("trend_ema", *last) < orders("trend_ema", *before)
    assert orders("trend_sma", *last) + orders("alt_sma", *last) > 50
    # The allocator goes on sampling and scoring it (no error: it is "running") and its
    # rounds fire through the window (``allocator.reallocated``). What it does not do
    # (a finding, asserted so a fix shows): single out the silent strategy. It has no
    # activity-decay detector; a silent strategy holding a position scores like a
    # buy-and-hold, and here it was even given capital (day 4.8 of the window).
    samples = _within(node.of(AllocatorSampled), low, high)
    assert len(samples) >= 40 and all("trend_ema" in s.equity for s in samples)
    moves = _within(node.of(CapitalReallocated), low, high)
    assert len(moves) >= 3 and all("trend_ema" in e.scores for e in moves)
    given = [e for e in _within(node.of(CapitalTransferred), low, high) if e.to_pool == "trend_ema"]
    assert given  # not moved away: see above


# -- tail loss on the pool holding the position --------------------------------------
TAIL = BacktestConfig(
    strategies=(
        StrategySpec(
            strategy="sma_cross", name="holder", engine="trend", params={"fast": 240, "slow": 1440}
        ),
        StrategySpec(
            strategy="sma_cross", name="fast", engine="alt", params={"fast": 20, "slow": 90}
        ),
    ),
    cash="200000",
    commission="0.00075",
    sizing="fraction:0.9",
    risk={
        "protections": {
            "max_drawdown": {
                "max_allowed_drawdown": "0.05",
                "lookback_seconds": 86400,
                "stop_seconds": 3600,
            }
        },
        "kill_switch": {"daily_loss_limit": "0.10"},
        "breaker": {"consecutive_losses": 1000},
    },
)
TAIL_START = 6100
"""A bar where ``holder`` (SMA 240/1440) is long and stays long for hours."""


def test_tail_loss_stops_the_pool_holding_the_position_and_the_other_keeps_trading() -> None:
    feed = load_bars(BTC, size_precision=5)
    start = feed.timestamps()[TAIL_START]
    # The slide of the scenario within two hours, not twenty-four: a trend follower exits
    # a 24-hour slide before a drawdown protection would notice.
    slid = ScenarioLibrary().transform("tail_loss", feed, start, {"hours": 2})
    node = ChaosNode(slid, TAIL)
    node.play(TAIL_START)
    symbol = node.kernel.instrument.symbol
    assert node.kernel.portfolios["holder"].position_quantity(symbol) > 0
    node.play(DAY_BARS)

    locks = [e for e in node.of(ProtectionLocked) if e.ts >= start and e.name == "max_drawdown"]
    assert locks and locks[0].ts < start + 2 * HOUR_NS
    first = locks[0]
    denied = [
        d
        for d in node.of(RiskDecision)
        if first.ts <= d.ts < first.until_ns and not d.approved and d.check == "protection"
    ]
    assert {d.strategy for d in denied} == {"holder"}
    assert not [e for e in node.of(KillSwitchTripped) if e.ts >= start]  # no global stop
    # The other pool trades on, through and after the lock.
    fast = [e for e in node.of(OrderSubmitted) if e.ts > first.ts and e.strategy == "fast"]
    assert len(fast) >= 5
    node.journal.flush()
    journaled = [r for r in node.journal.records() if r.type == "ProtectionLocked"]
    assert any(r.payload["name"] == "max_drawdown" and r.ts == first.ts for r in journaled)


# -- a short campaign --------------------------------------------------------------------
def test_a_campaign_places_the_governance_scenarios_and_its_allocator_handles_them(
    tmp_path: Path,
) -> None:
    config = CampaignConfig(days=5, chaos=str(CHAOS_TOML), seed=1, out_dir=str(tmp_path))
    result = Campaign(config).run()
    assert result.passed, [g.detail for g in result.failures()]
    ended = {e["scenario"]: e for e in result.chaos_log if e["type"] == "ScenarioEnded"}
    assert set(ended) == {"overfitting_loop", "scoring_corruption"}
    assert ended["scoring_corruption"]["handled"]
    assert tuple(ended["scoring_corruption"]["detected_by"]) == ("allocator.score_rejected",)
    assert ended["overfitting_loop"]["handled"]
    assert "allocator.score_jump" in ended["overfitting_loop"]["detected_by"]
    injected = {e["kind"] for e in result.chaos_log if e["type"] == "FaultInjected"}
    assert injected == {"score_corruption", "overfit_scoring"}

    from predator.ledger import Journal

    records = list(Journal(tmp_path / "journal.sqlite").records())
    kinds = Counter(r.type for r in records)
    assert kinds["AllocatorSampled"] >= 25  # a round every 4 hours for 5 days
    corrupt = next(e for e in result.chaos_log if e.get("kind") == "score_corruption")
    low, high = corrupt["ts"], corrupt["until_ts"]
    window = [r for r in records if low <= r.ts < high]
    assert any(
        r.type == "ScoreRejected" and r.payload["reason"].startswith(("not_finite", "out_of"))
        for r in window
    )
    assert not [r for r in window if r.type in ("CapitalTransferred", "CapitalReallocated")]
