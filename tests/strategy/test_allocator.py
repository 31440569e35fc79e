"""Specs for the allocator: it scores, sanity-checks, bounds and throttles before it moves.

Three pools at a paper venue (GOOG's scales), a scripted scorer per test, rounds driven by
hand on a virtual clock. Every event the allocator journals is collected from the bus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import pairwise
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.core.bus import MessageBus
from predator.core.clock import TimeWarp
from predator.core.events import Event
from predator.ledger import Ledger
from predator.ledger.journal import JournalRecord
from predator.portfolio import Portfolio
from predator.portfolio.transfers import CapitalTransferred, CapitalTransfers
from predator.strategy.allocator import (
    DAY_NS,
    AllocationThrottled,
    Allocator,
    AllocatorConfig,
    AllocatorSampled,
    CapitalReallocated,
    PoolSample,
    ScoreRejected,
    bounded_weights,
    return_over_drawdown,
)
from predator.testkit.builders import goog_feed, money
from predator.venue import CommissionModel, OrderRequest, PaperExchange, Side

GOOG = goog_feed().instrument
HOUR = 3_600 * 1_000_000_000
NAMES = ("alpha", "beta", "gamma")


def usd(amount: str | int) -> int:
    return money(amount, GOOG)


class Scripted:
    """A scorer that returns each strategy's next scripted score (the last one repeats)."""

    def __init__(self, scripts: Mapping[str, Sequence[float]]) -> None:
        self.scripts = scripts
        self.calls: dict[str, int] = {}

    def __call__(self, name: str, _samples: Sequence[PoolSample]) -> float:
        n = self.calls.get(name, 0)
        self.calls[name] = n + 1
        script = self.scripts[name]
        return script[min(n, len(script) - 1)]


class Desk:
    """Three pools of 10 000 USD at one venue, an allocator bound to them."""

    def __init__(self, allocator: Allocator, cash: str = "10000") -> None:
        self.clock = TimeWarp.virtual(0)
        self.bus = MessageBus()
        self.events: list[Event] = []
        self.bus.subscribe(Event, self.events.append)
        self.exchange = PaperExchange(
            clock=self.clock, instruments=[GOOG], cash=0, commission=CommissionModel(GOOG)
        )
        ledger = Ledger("USD", GOOG.money_precision)
        self.portfolios: dict[str, Portfolio] = {}
        for name in NAMES:
            self.exchange.open_account(name, usd(cash))
            self.portfolios[name] = Portfolio(
                bus=None, ledger=ledger, instruments=[GOOG], initial_cash=usd(cash), account=name
            )
        self.transfers = CapitalTransfers(
            bus=self.bus, clock=self.clock, exchange=self.exchange, portfolios=self.portfolios
        )
        self.halted: str | None = None
        self.allocator = allocator
        allocator.bind(
            clock=self.clock,
            publish=self.bus.publish,
            portfolios=self.portfolios,
            transfers=self.transfers,
            marks=lambda: {"GOOG": 10000},
            halted=lambda: self.halted,
        )

    def rounds(self, n: int, every: int = DAY_NS) -> None:
        for _ in range(n):
            self.clock.set(self.clock.now_ns() + every)
            self.allocator.run_round()

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def cash(self) -> dict[str, int]:
        return {name: p.cash for name, p in self.portfolios.items()}

    def check(self) -> None:
        for name, portfolio in self.portfolios.items():
            portfolio.check_balance_equation()
            assert self.exchange.accounts[name].cash == portfolio.cash
        assert sum(self.cash().values()) == 3 * usd(10000)


def allocator(scripts: Mapping[str, Sequence[float]], **config: Any) -> Allocator:
    return Allocator(AllocatorConfig(window=2, **config), scorer=Scripted(scripts))


# -- warming up and moving --------------------------------------------------------------
def test_nothing_moves_before_the_window_is_full() -> None:
    desk = Desk(allocator({n: [1.0] for n in NAMES}))
    desk.rounds(2)
    assert desk.allocator.rounds == 2
    assert [type(e) for e in desk.events] == [AllocatorSampled, AllocatorSampled]  # journaled


def test_accepted_scores_move_capital_toward_bounded_weights_within_the_round_budget() -> None:
    desk = Desk(allocator({"alpha": [3.0], "beta": [1.0], "gamma": [-2.0]}, max_weight="0.6"))
    desk.rounds(3)
    moved = desk.of(CapitalTransferred)
    assert moved and all(e.actor == "allocator" for e in moved)
    [realloc] = desk.of(CapitalReallocated)
    assert realloc.scores == {"alpha": 3.0, "beta": 1.0, "gamma": -2.0}
    # raw weights 3/4, 1/4, 0 -> bounded: alpha 0.6, then gamma at the 0.1 floor, beta 0.3
    assert realloc.targets == {"alpha": "0.600000", "beta": "0.300000", "gamma": "0.100000"}
    # at most 10 % of the 30 000 moves in one round, from gamma (the pool far above target)
    assert realloc.moved == usd(3000) == sum(e.amount for e in moved)
    assert [(e.from_pool, e.to_pool) for e in moved] == [("gamma", "alpha")]
    assert desk.cash() == {"alpha": usd(13000), "beta": usd(10000), "gamma": usd(7000)}
    desk.check()


def test_repeated_rounds_converge_on_the_targets_and_then_rest_in_the_band() -> None:
    desk = Desk(allocator({"alpha": [3.0], "beta": [1.0], "gamma": [-2.0]}, max_weight="0.6"))
    desk.rounds(20)
    assert desk.cash() == {"alpha": usd(18000), "beta": usd(9000), "gamma": usd(3000)}
    throttled = {e.reason for e in desk.of(AllocationThrottled)}
    assert throttled == {"hysteresis"}  # converged: nothing worth moving
    desk.check()


# -- scores rejected ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (math.nan, "not_finite"),
        (math.inf, "not_finite"),
        (-math.inf, "not_finite"),
        (1e300, "out_of_range"),
        (-2e6, "out_of_range"),
    ],
)
def test_a_nan_or_absurd_score_is_rejected_and_no_capital_moves(bad: float, reason: str) -> None:
    desk = Desk(allocator({"alpha": [3.0], "beta": [bad], "gamma": [-2.0]}))
    desk.rounds(5)
    rejected = desk.of(ScoreRejected)
    assert len(rejected) == 3  # every scored round
    assert {(e.strategy, e.score) for e in rejected} == {("beta", repr(bad))}
    assert all(e.reason.startswith(reason) for e in rejected)
    assert desk.of(CapitalTransferred) == [] and desk.of(CapitalReallocated) == []
    assert desk.cash() == dict.fromkeys(NAMES, usd(10000))
    desk.check()


def test_a_failing_scorer_is_a_rejected_score() -> None:
    def broken(_name: str, _samples: Sequence[PoolSample]) -> float:
        raise ZeroDivisionError("division by zero")

    desk = Desk(Allocator(AllocatorConfig(window=2), scorer=broken))
    desk.rounds(3)
    assert {e.strategy for e in desk.of(ScoreRejected)} == set(NAMES)
    assert desk.of(CapitalTransferred) == []


def test_a_one_round_spike_is_rejected_and_a_level_that_persists_is_accepted() -> None:
    scripts = {"alpha": [1.0, 40.0], "beta": [1.0], "gamma": [1.0]}
    desk = Desk(allocator(scripts, max_score_jump=5.0))
    desk.rounds(4)  # scored rounds 3 and 4: alpha 1.0, then the spike to 40.0
    [spike] = desk.of(ScoreRejected)
    assert spike.strategy == "alpha" and spike.reason.startswith("jump: 1 -> 40")
    assert desk.of(CapitalTransferred) == []
    desk.rounds(1)  # 40.0 again: a level, not a spike
    assert len(desk.of(ScoreRejected)) == 1
    assert desk.of(CapitalReallocated)[0].scores["alpha"] == 40.0


# -- the overfitting-loop guard -----------------------------------------------------------
def _noise(rounds: int) -> dict[str, list[float]]:
    """Scores that flip every round within the jump limit: pure noise to re-optimise on."""
    return {
        "alpha": [(1.0 if i % 2 else 4.0) for i in range(rounds)],
        "beta": [(4.0 if i % 2 else 1.0) for i in range(rounds)],
        "gamma": [2.0] * rounds,
    }


def test_noise_scored_hourly_reallocates_at_most_once_a_day_and_journals_each_refusal() -> None:
    desk = Desk(allocator(_noise(24 * 5 + 2)))
    desk.rounds(24 * 5 + 2, every=HOUR)
    reallocations = desk.of(CapitalReallocated)
    assert 4 <= len(reallocations) <= 5  # one per 24 h of kernel time, not one per round
    times = [e.ts for e in reallocations]
    assert all(b - a >= DAY_NS for a, b in pairwise(times))
    reasons = [e.reason for e in desk.of(AllocationThrottled)]
    assert reasons.count("min_interval") > 100
    assert desk.allocator.report()["throttled"]["min_interval"] == reasons.count("min_interval")
    desk.check()


def test_the_daily_limit_holds_even_with_no_minimum_interval() -> None:
    desk = Desk(allocator(_noise(50), min_interval_ns=0, max_reallocations_per_day=3))
    desk.rounds(50, every=HOUR)
    times = [e.ts for e in desk.of(CapitalReallocated)]
    for t in times:
        assert sum(1 for u in times if t - DAY_NS < u <= t) <= 3
    assert "daily_limit" in {e.reason for e in desk.of(AllocationThrottled)}


def test_the_guard_survives_a_restart_from_the_journal() -> None:
    desk = Desk(allocator(_noise(10), min_interval_ns=0, max_reallocations_per_day=2))
    desk.rounds(5, every=HOUR)
    records = [
        JournalRecord(i, e.ts, type(e).__name__, {"scores": e.scores}, b"")
        for i, e in enumerate(desk.of(CapitalReallocated), 1)
    ]
    assert len(records) == 2
    restarted = allocator(_noise(10), min_interval_ns=0, max_reallocations_per_day=2)
    restarted.restore(records)
    assert restarted.reallocation_times == [r.ts for r in records]
    assert restarted.previous_scores  # the jump check has its reference again


def test_the_sample_window_survives_a_restart_from_the_journal() -> None:
    desk = Desk(allocator({n: [1.0] for n in NAMES}))
    desk.rounds(5, every=HOUR)
    records = [
        JournalRecord(i, e.ts, "AllocatorSampled", msgspec.to_builtins(e), b"")
        for i, e in enumerate(desk.of(AllocatorSampled), 1)
    ]
    restarted = allocator({n: [1.0] for n in NAMES})
    restarted.restore(records)
    assert restarted.samples == {
        name: history[-(restarted.config.window + 1) :]
        for name, history in desk.allocator.samples.items()
    }


def test_nothing_moves_while_trading_is_halted() -> None:
    desk = Desk(allocator({"alpha": [3.0], "beta": [1.0], "gamma": [-2.0]}))
    desk.halted = "global kill switch tripped"
    desk.rounds(4)
    assert {e.reason for e in desk.of(AllocationThrottled)} == {"halted"}
    assert desk.of(CapitalTransferred) == []


# -- only free cash moves -----------------------------------------------------------------
def test_cash_promised_to_open_orders_is_not_moved() -> None:
    desk = Desk(allocator({"alpha": [3.0], "beta": [1.0], "gamma": [-2.0]}, max_weight="0.6"))
    desk.exchange.submit(
        OrderRequest(
            client_order_id="G1",
            symbol="GOOG",
            side=Side.BUY,
            equity_fraction="1",
            account="gamma",
        )
    )
    desk.rounds(3)
    # gamma is far above its target, but all its cash is promised: only beta gives
    assert [(e.from_pool, e.to_pool) for e in desk.of(CapitalTransferred)] == [("beta", "alpha")]
    assert desk.cash()["gamma"] == usd(10000)
    desk.exchange.submit(
        OrderRequest(
            client_order_id="B1", symbol="GOOG", side=Side.BUY, equity_fraction="1", account="beta"
        )
    )
    desk.rounds(1)
    assert [e.reason for e in desk.of(AllocationThrottled)] == ["no_free_cash"]
    desk.check()


# -- determinism and configuration --------------------------------------------------------
def test_two_runs_journal_the_same_events() -> None:
    def run() -> list[Event]:
        desk = Desk(allocator(_noise(60), min_interval_ns=6 * HOUR, max_reallocations_per_day=3))
        desk.rounds(60, every=HOUR)
        return desk.events

    assert run() == run()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("window", 0, "window must be >= 1"),
        ("min_weight", "0.6", "min_weight <= max_weight"),
        ("max_move_fraction", "0", "max_move_fraction"),
        ("hysteresis", "abc", "decimal strings"),
        ("score_bound", math.inf, "score_bound"),
        ("max_reallocations_per_day", 0, "max_reallocations_per_day"),
    ],
)
def test_a_bad_config_is_refused_with_the_reason(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AllocatorConfig(**{field: value, "max_weight": "0.5"})


def test_the_default_scorer_is_return_over_drawdown_net_of_transfers() -> None:
    score = return_over_drawdown(0.01)
    flat = [PoolSample(i, 1000, 0) for i in range(4)]
    assert score("x", flat) == 0.0
    # +10 %, -5 %, then a 500 transfer in: not performance
    path = [PoolSample(0, 1000, 0), PoolSample(1, 1100, 0), PoolSample(2, 1045, 0)]
    path.append(PoolSample(3, 1545, 500))
    growth = 1.1 * 0.95
    assert score("x", path) == pytest.approx((growth - 1) / 0.05)
    assert math.isnan(score("x", [PoolSample(0, 0, 0), PoolSample(1, 10, 0)]))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=8),
    st.integers(0, 20),
    st.integers(20, 100),
)
def test_bounded_weights_sum_to_one_within_the_bounds(raw: list[int], low: int, high: int) -> None:
    names = {f"s{i}": Fraction(v) for i, v in enumerate(raw)}
    lo, hi = Fraction(low, 100), Fraction(high, 100)
    weights = bounded_weights(names, lo, hi)
    assert sum(weights.values()) == 1
    n = len(raw)
    lo, hi = min(lo, Fraction(1, n)), max(hi, Fraction(1, n))
    assert all(lo <= w <= hi for w in weights.values())
