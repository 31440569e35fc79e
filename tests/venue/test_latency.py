"""Specs for the latency model and the dead-man's switch (pure timing arithmetic)."""

from __future__ import annotations

import pytest

from predator.core.rng import RngStreams
from predator.venue.dead_mans_switch import DeadMansSwitch
from predator.venue.latency import (
    ConstantDelay,
    LatencyModel,
    LognormalDelay,
    RecordedDelay,
)

MS = 1_000_000


def test_zero_latency_model_delays_nothing() -> None:
    model = LatencyModel.zero()
    assert (model.entry_ns(5), model.response_ns(5), model.observed_at(5)) == (0, 0, 5)


def test_constant_latency_response_defaults_to_the_entry_delay() -> None:
    model = LatencyModel.constant(3 * MS)
    assert (model.entry_ns(0), model.response_ns(0), model.observed_at(10)) == (3 * MS, 3 * MS, 10)


def test_seeded_lognormal_delays_repeat_for_a_seed_and_differ_across_seeds() -> None:
    def draws(seed: int) -> list[int]:
        model = LatencyModel.seeded(RngStreams(seed), median_ns=2 * MS, sigma=0.6)
        return [model.entry_ns(i) for i in range(20)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert all(isinstance(d, int) and d >= 0 for d in draws(3))


def test_lognormal_delay_respects_its_floor_and_cap() -> None:
    rng = RngStreams(9).stream("venue.latency.entry")
    delay = LognormalDelay(5 * MS, 2.0, rng=rng, floor_ns=MS, cap_ns=20 * MS)
    samples = [delay.sample(0) for _ in range(500)]
    assert min(samples) >= MS and max(samples) == 20 * MS


def test_latency_legs_draw_from_separate_streams() -> None:
    model = LatencyModel.seeded(RngStreams(4), median_ns=MS)
    entries = [model.entry_ns(0) for _ in range(5)]
    other = LatencyModel.seeded(RngStreams(4), median_ns=MS)
    [other.response_ns(0) for _ in range(50)]  # using one leg does not shift another
    assert [other.entry_ns(0) for _ in range(5)] == entries


def test_recorded_delay_replays_the_last_sample_at_or_before_the_time() -> None:
    delay = RecordedDelay([(100, 7), (200, 9)])
    assert [delay.sample(t) for t in (50, 100, 150, 200, 999)] == [7, 7, 7, 9, 9]


def test_recorded_delay_from_stamps_removes_the_recorder_clock_offset() -> None:
    # A recorder clock 1.3 s behind the exchange: raw differences are negative.
    offset = -1_300 * MS
    stamps = [(1_000 * MS, 1_000 * MS + offset + d) for d in (4 * MS, 2 * MS, 9 * MS)]
    delay = RecordedDelay.from_stamps(stamps, base_ns=MS)
    assert delay.sample(1_000 * MS) in {3 * MS, MS, 8 * MS}
    assert sorted(delay._delays) == [MS, 3 * MS, 8 * MS]


def test_negative_delays_are_refused() -> None:
    with pytest.raises(ValueError):
        ConstantDelay(-1)
    with pytest.raises(ValueError):
        RecordedDelay([(0, -5)])


# -- dead-man's switch --------------------------------------------------------------------
def test_dead_mans_switch_fires_once_after_the_timeout_without_heartbeat() -> None:
    switch = DeadMansSwitch()
    switch.heartbeat("main", now=0, timeout_ns=10)
    switch.heartbeat("main", now=8)  # re-arms: deadline 18
    assert switch.expired(now=17) == []
    assert switch.expired(now=18) == ["main"]
    assert switch.expired(now=100) == []


def test_dead_mans_switch_disarms_with_a_zero_timeout() -> None:
    switch = DeadMansSwitch()
    switch.heartbeat("a", now=0, timeout_ns=10)
    switch.heartbeat("a", now=1, timeout_ns=0)
    assert switch.next_deadline() is None and switch.expired(now=50) == []


def test_dead_mans_switch_reports_accounts_in_sorted_order() -> None:
    switch = DeadMansSwitch()
    for account in ("zeta", "alpha", "mid"):
        switch.heartbeat(account, now=0, timeout_ns=5)
    assert switch.expired(now=5) == ["alpha", "mid", "zeta"]
