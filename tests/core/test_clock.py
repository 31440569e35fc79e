"""Specs for the kernel clocks: virtual and scaled TimeWarp, WallClock."""

from __future__ import annotations

import math
import time

import pytest

from predator.core.clock import NS_PER_SECOND, Clock, TimeWarp, WallClock, iso_utc

MARCH_1_2023 = 1_677_628_800 * NS_PER_SECOND


class FakeWall:
    """A monotonic nanosecond source moved by hand."""

    def __init__(self, ns: int = 5_000) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    def tick(self, seconds: float) -> None:
        self.ns += int(seconds * NS_PER_SECOND)


# -- virtual mode ----------------------------------------------------------------------
def test_virtual_clock_stands_still_until_moved() -> None:
    clock = TimeWarp.virtual(start_ns=MARCH_1_2023)
    assert clock.now_ns() == MARCH_1_2023
    assert clock.now_ns() == MARCH_1_2023
    assert clock.is_virtual


def test_virtual_clock_starts_at_zero_by_default() -> None:
    assert TimeWarp.virtual().now_ns() == 0


def test_set_and_advance_move_virtual_time_forward() -> None:
    clock = TimeWarp.virtual(start_ns=100)
    clock.set(250)
    assert clock.now_ns() == 250
    clock.advance(50)
    assert clock.now_ns() == 300
    clock.set(300)  # staying put is allowed
    clock.advance(0)
    assert clock.now_ns() == 300


def test_setting_time_backwards_raises_naming_both_times() -> None:
    clock = TimeWarp.virtual(start_ns=MARCH_1_2023)
    with pytest.raises(ValueError, match="backwards") as info:
        clock.set(MARCH_1_2023 - 1)
    message = str(info.value)
    assert str(MARCH_1_2023) in message
    assert str(MARCH_1_2023 - 1) in message
    assert clock.now_ns() == MARCH_1_2023


def test_advancing_by_a_negative_delta_raises() -> None:
    clock = TimeWarp.virtual(start_ns=10)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_scaled_only_operations_refuse_a_virtual_clock() -> None:
    clock = TimeWarp.virtual()
    with pytest.raises(RuntimeError, match="virtual"):
        clock.pause()
    with pytest.raises(RuntimeError, match="virtual"):
        clock.resume()
    with pytest.raises(RuntimeError, match="virtual"):
        _ = clock.speed


def test_virtual_clock_never_asks_to_sleep() -> None:
    clock = TimeWarp.virtual(start_ns=0)
    assert clock.sleep_until(10 * NS_PER_SECOND) == 0.0


def test_timewarp_and_wallclock_satisfy_the_clock_protocol() -> None:
    clocks: list[Clock] = [TimeWarp.virtual(), TimeWarp.scaled(wall=FakeWall()), WallClock()]
    assert all(isinstance(c.now_ns(), int) for c in clocks)


# -- scaled mode -----------------------------------------------------------------------
def test_scaled_clock_runs_speed_times_faster_than_the_wall() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=60.0, start_ns=MARCH_1_2023, wall=wall)
    assert clock.now_ns() == MARCH_1_2023
    wall.tick(1.0)
    assert clock.now_ns() == MARCH_1_2023 + 60 * NS_PER_SECOND
    assert not clock.is_virtual
    assert clock.speed == 60.0


def test_scaled_clock_defaults_to_real_utc_start() -> None:
    before = time.time_ns()
    clock = TimeWarp.scaled(wall=FakeWall())
    assert before <= clock.now_ns() <= time.time_ns()


def test_paused_scaled_clock_holds_still_and_resumes_without_a_jump() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=10.0, start_ns=0, wall=wall)
    wall.tick(1.0)
    clock.pause()
    assert not clock.running
    wall.tick(100.0)
    assert clock.now_ns() == 10 * NS_PER_SECOND
    clock.resume()
    assert clock.running
    assert clock.now_ns() == 10 * NS_PER_SECOND
    wall.tick(1.0)
    assert clock.now_ns() == 20 * NS_PER_SECOND


def test_pause_and_resume_twice_are_harmless() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=2.0, start_ns=0, wall=wall)
    clock.resume()
    wall.tick(1.0)
    clock.pause()
    clock.pause()
    wall.tick(1.0)
    assert clock.now_ns() == 2 * NS_PER_SECOND


def test_changing_speed_at_run_time_does_not_jump_time() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=60.0, start_ns=0, wall=wall)
    wall.tick(2.0)
    before = clock.now_ns()
    clock.speed = 1.0
    assert clock.now_ns() == before == 120 * NS_PER_SECOND
    wall.tick(2.0)
    assert clock.now_ns() == 122 * NS_PER_SECOND


def test_speed_can_change_while_paused() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=60.0, start_ns=0, wall=wall)
    clock.pause()
    clock.speed = 2.0
    wall.tick(5.0)
    assert clock.now_ns() == 0
    clock.resume()
    wall.tick(1.0)
    assert clock.now_ns() == 2 * NS_PER_SECOND


@pytest.mark.parametrize("speed", [0.0, -1.0, math.inf, math.nan])
def test_speed_must_be_positive_and_finite(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        TimeWarp.scaled(speed=speed, wall=FakeWall())
    clock = TimeWarp.scaled(wall=FakeWall())
    with pytest.raises(ValueError, match="speed"):
        clock.speed = speed


def test_fractional_speed_is_exact_and_monotonic() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=0.5, start_ns=0, wall=wall)
    readings = []
    for _ in range(10):
        wall.ns += 3
        readings.append(clock.now_ns())
    assert readings == sorted(readings)
    assert readings[-1] == 15


def test_set_jumps_a_scaled_clock_forward_and_it_keeps_running() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=60.0, start_ns=0, wall=wall)
    clock.set(3_600 * NS_PER_SECOND)
    assert clock.now_ns() == 3_600 * NS_PER_SECOND
    wall.tick(1.0)
    assert clock.now_ns() == 3_660 * NS_PER_SECOND
    with pytest.raises(ValueError, match="backwards"):
        clock.set(0)


def test_sleep_until_converts_simulated_wait_to_wall_seconds() -> None:
    wall = FakeWall()
    clock = TimeWarp.scaled(speed=60.0, start_ns=0, wall=wall)
    assert clock.sleep_until(60 * NS_PER_SECOND) == pytest.approx(1.0)
    wall.tick(0.5)
    assert clock.sleep_until(60 * NS_PER_SECOND) == pytest.approx(0.5)
    assert clock.sleep_until(0) == 0.0


def test_sleep_until_is_infinite_while_paused() -> None:
    clock = TimeWarp.scaled(speed=60.0, start_ns=0, wall=FakeWall())
    clock.pause()
    assert clock.sleep_until(NS_PER_SECOND) == math.inf
    assert clock.sleep_until(0) == 0.0


# -- wall clock and formatting ---------------------------------------------------------
def test_wall_clock_reads_real_utc_time() -> None:
    before = time.time_ns()
    now = WallClock().now_ns()
    assert before <= now <= time.time_ns()


def test_wall_clock_sleep_until_past_time_is_zero() -> None:
    assert WallClock().sleep_until(0) == 0.0
    assert 0.0 < WallClock().sleep_until(time.time_ns() + 10 * NS_PER_SECOND) <= 10.0


def test_iso_utc_keeps_nanoseconds() -> None:
    assert iso_utc(MARCH_1_2023) == "2023-03-01T00:00:00.000000000Z"
    assert iso_utc(MARCH_1_2023 + 123_456_789) == "2023-03-01T00:00:00.123456789Z"
    assert iso_utc(-1) == "1969-12-31T23:59:59.999999999Z"


def test_repr_shows_mode_and_time() -> None:
    assert "virtual" in repr(TimeWarp.virtual(start_ns=MARCH_1_2023))
    clock = TimeWarp.scaled(speed=2.0, start_ns=0, wall=FakeWall())
    clock.pause()
    assert "paused" in repr(clock)
