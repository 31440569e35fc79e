"""Specs for ScenarioClock, the discrete-event loop of the simulation runtime."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predator.core.clock import TimeWarp
from predator.core.scheduler import ScenarioClock


def test_callbacks_run_in_time_order_with_the_clock_at_their_time() -> None:
    sim = ScenarioClock(TimeWarp.virtual(start_ns=0))
    seen: list[tuple[str, int]] = []

    def record(name: str) -> None:
        seen.append((name, sim.clock.now_ns()))

    sim.schedule(30, record, "c")
    sim.schedule(10, record, "a")
    sim.schedule(20, record, "b")
    assert sim.run() == 3
    assert seen == [("a", 10), ("b", 20), ("c", 30)]
    assert sim.clock.now_ns() == 30


def test_equal_times_run_first_scheduled_first() -> None:
    sim = ScenarioClock()
    seen: list[int] = []
    for i in range(5):
        sim.schedule(7, seen.append, i)
    sim.run()
    assert seen == [0, 1, 2, 3, 4]


def test_schedule_in_is_relative_to_the_current_time() -> None:
    sim = ScenarioClock(TimeWarp.virtual(start_ns=1_000))
    call = sim.schedule_in(500, lambda: None)
    assert call.at_ns == 1_500
    assert sim.next_time == 1_500


def test_scheduling_in_the_past_raises() -> None:
    sim = ScenarioClock(TimeWarp.virtual(start_ns=1_000))
    with pytest.raises(ValueError, match="past"):
        sim.schedule(999, lambda: None)
    with pytest.raises(ValueError, match="past"):
        sim.schedule_in(-1, lambda: None)
    assert len(sim) == 0


def test_scheduling_at_the_current_time_is_allowed() -> None:
    sim = ScenarioClock(TimeWarp.virtual(start_ns=5))
    seen: list[str] = []
    sim.schedule(5, seen.append, "now")
    sim.run()
    assert seen == ["now"]


def test_cancelled_calls_never_run_and_do_not_count() -> None:
    sim = ScenarioClock()
    seen: list[str] = []
    keep = sim.schedule(10, seen.append, "keep")
    drop = sim.schedule(5, seen.append, "drop")
    assert len(sim) == 2
    assert sim.cancel(drop) is True
    assert len(sim) == 1
    assert sim.next_time == 10
    assert sim.cancel(drop) is False
    sim.run()
    assert seen == ["keep"]
    assert sim.cancel(keep) is False
    assert not keep.pending


def test_cancelling_another_schedulers_call_raises() -> None:
    call = ScenarioClock().schedule(1, lambda: None)
    with pytest.raises(ValueError, match="another"):
        ScenarioClock().cancel(call)


def test_run_until_runs_due_calls_and_moves_the_clock_to_the_target() -> None:
    sim = ScenarioClock()
    seen: list[int] = []
    for t in (10, 20, 30):
        sim.schedule(t, seen.append, t)
    assert sim.run_until(20) == 2
    assert seen == [10, 20]
    assert sim.clock.now_ns() == 20
    assert sim.run_until(25) == 0
    assert sim.clock.now_ns() == 25
    assert len(sim) == 1
    assert sim.next_time == 30


def test_run_until_the_past_raises() -> None:
    sim = ScenarioClock(TimeWarp.virtual(start_ns=100))
    with pytest.raises(ValueError, match="past"):
        sim.run_until(99)


def test_callbacks_may_schedule_more_callbacks() -> None:
    sim = ScenarioClock()
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(sim.clock.now_ns())
        sim.schedule_in(10, tick)

    sim.schedule(0, tick)
    sim.run_until(35)
    assert ticks == [0, 10, 20, 30]
    assert sim.next_time == 40


def test_a_call_scheduled_for_now_runs_after_those_already_queued_for_now() -> None:
    sim = ScenarioClock()
    seen: list[str] = []

    def first() -> None:
        seen.append("first")
        sim.schedule(5, seen.append, "spawned")

    sim.schedule(5, first)
    sim.schedule(5, seen.append, "second")
    sim.run()
    assert seen == ["first", "second", "spawned"]


def test_step_runs_exactly_one_call() -> None:
    sim = ScenarioClock()
    seen: list[int] = []
    sim.schedule(1, seen.append, 1)
    sim.schedule(2, seen.append, 2)
    assert sim.step() is True
    assert seen == [1]
    assert sim.clock.now_ns() == 1
    assert sim.step() is True
    assert sim.step() is False
    assert sim.next_time is None


def test_step_skips_cancelled_calls() -> None:
    sim = ScenarioClock()
    seen: list[int] = []
    sim.cancel(sim.schedule(1, seen.append, 1))
    sim.schedule(2, seen.append, 2)
    assert sim.step() is True
    assert seen == [2]


def test_a_scaled_timewarp_is_refused() -> None:
    with pytest.raises(ValueError, match="virtual"):
        ScenarioClock(TimeWarp.scaled(wall=lambda: 0))


def test_a_clock_moved_past_the_queue_elsewhere_leaves_the_call_queued() -> None:
    sim = ScenarioClock()
    sim.schedule(10, lambda: None)
    sim.clock.set(20)
    with pytest.raises(ValueError, match="backwards"):
        sim.step()
    assert len(sim) == 1


def test_an_exception_in_a_callback_propagates_and_the_loop_can_go_on() -> None:
    sim = ScenarioClock()
    seen: list[int] = []

    def boom() -> None:
        raise RuntimeError("strategy crashed")

    sim.schedule(1, boom)
    sim.schedule(2, seen.append, 2)
    with pytest.raises(RuntimeError):
        sim.run()
    assert len(sim) == 1
    sim.run()
    assert seen == [2]


schedules = st.lists(st.tuples(st.integers(min_value=0, max_value=50), st.booleans()), max_size=60)


@given(schedules)
def test_any_schedule_runs_in_non_decreasing_time_with_fifo_ties(
    entries: list[tuple[int, bool]],
) -> None:
    sim = ScenarioClock()
    ran: list[tuple[int, int]] = []
    calls = [sim.schedule(at, ran.append, (at, index)) for index, (at, _) in enumerate(entries)]
    for call, (_, cancel) in zip(calls, entries, strict=True):
        if cancel:
            sim.cancel(call)
    expected = sorted((at, i) for i, (at, cancel) in enumerate(entries) if not cancel)
    assert len(sim) == len(expected)
    assert sim.run() == len(expected)
    assert ran == expected
    assert len(sim) == 0


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=30), st.integers(0, 25))
def test_run_until_splits_a_schedule_exactly_at_the_target(times: list[int], cut: int) -> None:
    sim = ScenarioClock()
    ran: list[int] = []
    for t in times:
        sim.schedule(t, ran.append, t)
    sim.run_until(cut)
    assert ran == sorted(t for t in times if t <= cut)
    assert sim.clock.now_ns() == cut
    sim.run()
    assert ran == sorted(times)
