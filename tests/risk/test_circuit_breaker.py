"""The CircuitBreaker's seed rules, driven by a virtual TimeWarp (time advances, never sleeps).

Each test builds a breaker with the default (seed) config and records every published
``BreakerStateChanged``, so assertions cover both the state and what the journal would see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.core.clock import NS_PER_SECOND, TimeWarp
from predator.core.events import Event
from predator.risk.circuit_breaker import (
    BreakerConfig,
    BreakerState,
    BreakerStateChanged,
    CircuitBreaker,
)

START_NS = 1_700_000_000_000_000_000
SECOND = NS_PER_SECOND
CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


@dataclass
class Rig:
    clock: TimeWarp
    breaker: CircuitBreaker
    events: list[Event] = field(default_factory=list)

    @property
    def changes(self) -> list[tuple[BreakerState, BreakerState]]:
        return [(e.previous, e.state) for e in self.events if isinstance(e, BreakerStateChanged)]

    def fail(self, times: int, reason: str = "boom") -> None:
        for _ in range(times):
            self.breaker.record_failure(reason)

    def succeed(self, times: int) -> None:
        for _ in range(times):
            self.breaker.record_success()


def make_rig(config: BreakerConfig | None = None, scope: str = "strategy:sma_cross") -> Rig:
    clock = TimeWarp.virtual(START_NS)
    events: list[Event] = []
    breaker = CircuitBreaker(scope, config or BreakerConfig(), clock, publish=events.append)
    return Rig(clock=clock, breaker=breaker, events=events)


def trip_by_failures(rig: Rig) -> None:
    rig.fail(5)
    assert rig.breaker.state is OPEN


# -- config -------------------------------------------------------------------------------
def test_default_config_is_the_seed_config() -> None:
    config = BreakerConfig()
    assert config.consecutive_failures == 5
    assert config.failure_rate == "0.5"
    assert config.window_ns == 300 * SECOND
    assert config.min_calls == 10
    assert config.consecutive_losses == 3
    assert config.max_cumulative_loss is None
    assert config.cooldown_ns == 60 * SECOND
    assert config.half_open_successes == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"consecutive_failures": 0},
        {"failure_rate": "1.5"},
        {"failure_rate": "lots"},
        {"window_ns": 0},
        {"cooldown_ns": -1},
        {"max_cumulative_loss": -5},
        {"half_open_successes": 0},
    ],
)
def test_config_rejects_nonsense(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="BreakerConfig"):
        BreakerConfig(**overrides)  # type: ignore[arg-type]


def test_config_decodes_from_toml_like_mapping() -> None:
    config = msgspec.convert({"failure_rate": "0.25", "cooldown_ns": 5 * SECOND}, BreakerConfig)
    assert config.failure_rate_fraction == Fraction(1, 4)
    assert config.cooldown_ns == 5 * SECOND
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"failure_rate": "2"}, BreakerConfig)


# -- consecutive failures -----------------------------------------------------------------
def test_breaker_starts_closed_and_allows_calls() -> None:
    rig = make_rig()
    assert rig.breaker.state is CLOSED
    assert rig.breaker.allow()
    assert rig.events == []


def test_breaker_stays_closed_after_four_consecutive_failures() -> None:
    rig = make_rig()
    rig.fail(4)
    assert rig.breaker.state is CLOSED
    assert rig.breaker.allow()


def test_breaker_opens_after_five_consecutive_failures() -> None:
    rig = make_rig()
    rig.fail(5, reason="on_bar raised KeyError")
    assert rig.breaker.state is OPEN
    assert not rig.breaker.allow()
    assert rig.breaker.trips == 1
    assert rig.changes == [(CLOSED, OPEN)]
    event = rig.events[0]
    assert isinstance(event, BreakerStateChanged)
    assert event.ts == START_NS
    assert event.scope == "strategy:sma_cross"
    assert "5 consecutive failures" in event.reason
    assert "on_bar raised KeyError" in event.reason


def test_a_success_resets_the_consecutive_failure_count() -> None:
    rig = make_rig()
    rig.fail(4)
    rig.succeed(1)
    rig.fail(4)
    assert rig.breaker.state is CLOSED


# -- failure rate ---------------------------------------------------------------------------
def test_failure_rate_needs_min_calls_in_the_window() -> None:
    rig = make_rig()
    # 9 calls, 6 failing (67%): above the rate, but below min_calls.
    for _ in range(3):
        rig.fail(2)
        rig.succeed(1)
    assert rig.breaker.state is CLOSED
    rig.fail(1)  # 10 calls, 7 failures: 70% > 50%
    assert rig.breaker.state is OPEN
    assert "failure rate 7/10 above 0.5 over 300s" in (rig.breaker.last_reason or "")


def test_failure_rate_of_exactly_half_does_not_open() -> None:
    rig = make_rig()
    for _ in range(5):
        rig.fail(1)
        rig.succeed(1)
    assert rig.breaker.snapshot()["window_calls"] == 10
    assert rig.breaker.state is CLOSED
    rig.fail(1)  # 6/11 > 1/2
    assert rig.breaker.state is OPEN


def test_failure_rate_only_counts_calls_inside_the_window() -> None:
    rig = make_rig()
    for _ in range(4):
        rig.fail(2)
        rig.succeed(1)  # 12 calls, 8 failures, but never 5 in a row
        rig.clock.advance(100 * SECOND)
    # At most 9 calls fit in any 300 s window (3 per 100 s step): never min_calls.
    assert rig.breaker.state is CLOSED
    snapshot = rig.breaker.snapshot()
    assert snapshot["window_calls"] == 6  # the calls at t=200 s and t=300 s; t=0, 100 s left


def test_old_failures_leave_the_window() -> None:
    rig = make_rig()
    rig.fail(4)
    rig.succeed(5)
    rig.clock.advance(300 * SECOND)  # the first nine calls are now exactly 300 s old: gone
    rig.fail(4)
    rig.succeed(1)
    rig.fail(1)
    assert rig.breaker.snapshot()["window_calls"] == 6
    assert rig.breaker.state is CLOSED


# -- losing trades ------------------------------------------------------------------------
def test_breaker_opens_after_three_consecutive_losing_trades() -> None:
    rig = make_rig()
    rig.breaker.record_trade(-100)
    rig.breaker.record_trade(-1)
    assert rig.breaker.state is CLOSED
    rig.breaker.record_trade(-5)
    assert rig.breaker.state is OPEN
    assert rig.breaker.last_reason == "3 consecutive losing trades"
    assert rig.breaker.cumulative_loss == 106


def test_a_winning_or_flat_trade_resets_the_loss_streak() -> None:
    rig = make_rig()
    rig.breaker.record_trade(-100)
    rig.breaker.record_trade(-100)
    rig.breaker.record_trade(250)
    rig.breaker.record_trade(-100)
    rig.breaker.record_trade(-100)
    rig.breaker.record_trade(0)
    rig.breaker.record_trade(-100)
    assert rig.breaker.state is CLOSED
    assert rig.breaker.cumulative_loss == 500  # wins do not offset the loss total


def test_cumulative_loss_beyond_the_budget_opens() -> None:
    rig = make_rig(BreakerConfig(max_cumulative_loss=1_000))
    rig.breaker.record_trade(-600)
    rig.breaker.record_trade(10)
    rig.breaker.record_trade(-400)  # exactly 1000: not beyond
    assert rig.breaker.state is CLOSED
    rig.breaker.record_trade(50)
    rig.breaker.record_trade(-1)
    assert rig.breaker.state is OPEN
    assert rig.breaker.last_reason == "cumulative loss 1001 beyond 1000"


def test_the_loss_budget_stays_spent_until_reset() -> None:
    rig = make_rig(BreakerConfig(max_cumulative_loss=1_000))
    rig.breaker.record_trade(-1_500)
    assert rig.breaker.state is OPEN
    rig.clock.advance(60 * SECOND)
    rig.succeed(2)
    assert rig.breaker.state is CLOSED
    rig.breaker.record_trade(-1)
    assert rig.breaker.state is OPEN
    rig.breaker.reset("operator: new day")
    assert rig.breaker.cumulative_loss == 0
    rig.breaker.record_trade(-999)
    assert rig.breaker.state is CLOSED


# -- recovery ------------------------------------------------------------------------------
def test_open_breaker_turns_half_open_after_the_cooldown() -> None:
    rig = make_rig()
    trip_by_failures(rig)
    rig.clock.advance(60 * SECOND - 1)
    assert rig.breaker.state is OPEN
    assert not rig.breaker.allow()
    rig.clock.advance(1)
    assert rig.breaker.state is HALF_OPEN
    assert rig.breaker.allow()
    assert rig.changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]
    event = rig.events[-1]
    assert isinstance(event, BreakerStateChanged)
    assert event.ts == START_NS + 60 * SECOND
    assert event.reason == "cooldown of 60s elapsed"


def test_half_open_breaker_closes_after_two_successes() -> None:
    rig = make_rig()
    trip_by_failures(rig)
    rig.clock.advance(60 * SECOND)
    rig.succeed(1)
    assert rig.breaker.state is HALF_OPEN
    rig.succeed(1)
    assert rig.breaker.state is CLOSED
    assert rig.changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    assert rig.breaker.opened_at is None
    # Counters start afresh: four more failures do not reopen it.
    rig.fail(4)
    assert rig.breaker.state is CLOSED


def test_any_failure_in_half_open_reopens_and_restarts_the_cooldown() -> None:
    rig = make_rig()
    trip_by_failures(rig)
    rig.clock.advance(90 * SECOND)
    rig.succeed(1)
    rig.fail(1, reason="timeout")
    assert rig.breaker.state is OPEN
    assert rig.breaker.trips == 2
    assert rig.breaker.last_reason == "failure while half-open: timeout"
    assert rig.breaker.opened_at == START_NS + 90 * SECOND
    rig.clock.advance(59 * SECOND)
    assert rig.breaker.state is OPEN
    rig.clock.advance(1 * SECOND)
    assert rig.breaker.state is HALF_OPEN


def test_a_losing_trade_in_half_open_reopens() -> None:
    rig = make_rig()
    trip_by_failures(rig)
    rig.clock.advance(60 * SECOND)
    rig.breaker.record_trade(-1)
    assert rig.breaker.state is OPEN


def test_results_while_open_neither_change_state_nor_extend_the_cooldown() -> None:
    rig = make_rig()
    trip_by_failures(rig)
    rig.clock.advance(30 * SECOND)
    rig.fail(3)
    rig.succeed(3)
    rig.breaker.record_trade(-10)
    assert rig.breaker.state is OPEN
    rig.clock.advance(30 * SECOND)
    assert rig.breaker.state is HALF_OPEN
    assert rig.breaker.trips == 1


# -- manual control ---------------------------------------------------------------------
def test_manual_trip_opens_and_recovers_through_half_open() -> None:
    rig = make_rig(scope="engine:trend")
    rig.breaker.trip("operator: news event")
    assert rig.breaker.state is OPEN
    assert rig.breaker.trips == 1
    event = rig.events[0]
    assert isinstance(event, BreakerStateChanged)
    assert (event.scope, event.reason) == ("engine:trend", "operator: news event")
    rig.clock.advance(60 * SECOND)
    assert rig.breaker.state is HALF_OPEN


def test_tripping_an_open_breaker_restarts_its_cooldown_without_an_event() -> None:
    rig = make_rig()
    trip_by_failures(rig)
    rig.clock.advance(40 * SECOND)
    rig.breaker.trip("operator")
    assert len(rig.events) == 1
    rig.clock.advance(40 * SECOND)
    assert rig.breaker.state is OPEN
    rig.clock.advance(20 * SECOND)
    assert rig.breaker.state is HALF_OPEN


def test_reset_closes_from_any_state() -> None:
    rig = make_rig(scope="global")
    trip_by_failures(rig)
    rig.breaker.reset("operator: fixed")
    assert rig.breaker.state is CLOSED
    assert rig.changes == [(CLOSED, OPEN), (OPEN, CLOSED)]
    assert rig.breaker.last_reason == "operator: fixed"
    rig.fail(4)
    assert rig.breaker.state is CLOSED


def test_reset_of_a_closed_breaker_publishes_nothing() -> None:
    rig = make_rig()
    rig.fail(4)
    rig.breaker.reset("operator")
    rig.fail(4)
    assert rig.breaker.state is CLOSED
    assert rig.events == []


def test_breaker_works_without_a_publisher() -> None:
    breaker = CircuitBreaker("global", BreakerConfig(), TimeWarp.virtual(0))
    for _ in range(5):
        breaker.record_failure("x")
    assert breaker.state is OPEN


# -- reporting -------------------------------------------------------------------------------
def test_snapshot_reports_state_counts_and_reason() -> None:
    rig = make_rig()
    rig.fail(2, reason="venue timeout")
    rig.breaker.record_trade(-7)
    snapshot = rig.breaker.snapshot()
    assert snapshot == {
        "scope": "strategy:sma_cross",
        "state": "closed",
        "consecutive_failures": 2,
        "window_calls": 2,
        "window_failures": 2,
        "loss_streak": 1,
        "cumulative_loss": 7,
        "half_open_successes": 0,
        "successes": 0,
        "failures": 2,
        "trips": 0,
        "last_reason": None,
        "last_failure": "venue timeout",
        "opened_at": None,
        "half_open_at": None,
    }
    rig.fail(3)
    snapshot = rig.breaker.snapshot()
    assert snapshot["state"] == "open"
    assert snapshot["opened_at"] == START_NS
    assert snapshot["half_open_at"] == START_NS + 60 * SECOND
    assert snapshot["trips"] == 1


def test_state_change_event_round_trips_through_msgspec() -> None:
    rig = make_rig()
    trip_by_failures(rig)
    event = rig.events[0]
    decoded = msgspec.json.decode(msgspec.json.encode(event), type=BreakerStateChanged)
    assert decoded == event
    assert BreakerStateChanged.journaled


# -- properties ------------------------------------------------------------------------------
# Bursts of calls make every transition likely: a run of failures opens the breaker, time
# advances reach the cooldown, and short runs of successes close it again.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("successes"), st.integers(1, 3)),
        st.tuples(st.just("failures"), st.integers(1, 6)),
        st.tuples(
            st.just("advance"),
            st.sampled_from([SECOND, 59 * SECOND, 60 * SECOND]) | st.integers(0, 400 * SECOND),
        ),
        st.tuples(st.just("trade"), st.integers(-50, 50)),
    ),
    max_size=60,
)


def run_operation(rig: Rig, kind: str, value: int, streak: int) -> int:
    """Apply one operation; return the failure streak (failures since the last success)."""
    if kind == "successes":
        rig.succeed(value)
        return 0
    if kind == "failures":
        for _ in range(value):
            rig.breaker.record_failure("x")
            streak += 1
            if streak >= 5:
                assert rig.breaker.state is not CLOSED
        return streak
    if kind == "advance":
        rig.clock.advance(value)
    else:
        rig.breaker.record_trade(value)
    return streak


@settings(max_examples=300, deadline=None)
@given(operations)
def test_breaker_transitions_are_safe_for_any_sequence(ops: list[tuple[str, int]]) -> None:
    rig = make_rig()
    streak = 0
    for kind, value in ops:
        streak = run_operation(rig, kind, value, streak)
        assert rig.breaker.allow() == (rig.breaker.state is not OPEN)
    rig.breaker.snapshot()
    changes = rig.changes
    # The published changes form a chain starting from CLOSED ...
    states = [CLOSED] + [state for _, state in changes]
    assert [previous for previous, _ in changes] == states[:-1]
    assert states[-1] is rig.breaker.state
    # ... in which OPEN only ever leads to HALF_OPEN, and every change is a real change.
    for previous, state in changes:
        assert previous is not state
        if previous is OPEN:
            assert state is HALF_OPEN
    assert rig.breaker.trips == sum(1 for _, state in changes if state is OPEN)
