"""Specs for the queue-position models (pure arithmetic: toy numbers are the point here)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predator.venue.queue_model import (
    ProbQueue,
    QueuePosition,
    RiskAverseQueue,
    log_queue,
    power_queue,
)

MODELS = [
    RiskAverseQueue(),
    ProbQueue(power_queue(1)),
    ProbQueue(power_queue(3)),
    ProbQueue(log_queue),
]


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_trades_eat_the_queue_from_the_front_and_the_excess_reaches_us(model: object) -> None:
    position = QueuePosition(ahead=10)
    assert model.on_trade(position, 4) == 0  # type: ignore[attr-defined]
    assert position.ahead == 6
    assert model.on_trade(position, 9) == 3  # type: ignore[attr-defined]
    assert position.ahead == 0


def test_risk_averse_queue_ignores_cancels_while_the_level_still_holds_our_queue() -> None:
    model = RiskAverseQueue()
    position = QueuePosition(ahead=30)
    model.on_level_change(position, 50, 35)  # 15 cancelled: assumed all behind us
    assert position.ahead == 30
    model.on_level_change(position, 35, 80)  # new orders join behind us
    assert position.ahead == 30


def test_risk_averse_queue_is_capped_by_what_is_displayed() -> None:
    model = RiskAverseQueue()
    position = QueuePosition(ahead=30)
    model.on_level_change(position, 50, 12)
    assert position.ahead == 12


def test_power_queue_credits_the_front_its_weighted_share_of_a_cancel() -> None:
    # 30 ahead, 10 behind, 8 cancelled: the front's share is 30^2 / (30^2 + 10^2) = 0.9.
    position = QueuePosition(ahead=30)
    ProbQueue(power_queue(2)).on_level_change(position, 40, 32)
    assert position.ahead == round(30 - Fraction(9, 10) * 8) == 23


def test_log_queue_credits_the_front_by_log_weights() -> None:
    position = QueuePosition(ahead=30)
    ProbQueue(log_queue).on_level_change(position, 40, 30)
    share = math.log1p(30) / (math.log1p(30) + math.log1p(10))
    assert position.ahead == round(30 - share * 10)


def test_prob_queue_does_not_count_traded_volume_twice() -> None:
    # A trade of 5 was seen; the next depth update shows the level 5 smaller: no cancel.
    model = ProbQueue(power_queue(2))
    position = QueuePosition(ahead=30)
    model.on_trade(position, 5)
    model.on_level_change(position, 40, 35)
    assert position.ahead == 25 and position.traded == 0


def test_prob_queue_takes_from_the_front_what_the_back_cannot_hold() -> None:
    # log weights give the single unit behind us 9% of 500 cancelled: 45 > 1, so the
    # front lost 499 of them.
    position = QueuePosition(ahead=1000)
    ProbQueue(log_queue).on_level_change(position, 1001, 501)
    assert position.ahead == 501


@given(
    ahead=st.integers(0, 1000),
    behind=st.integers(0, 1000),
    after=st.integers(0, 3000),
    traded=st.integers(0, 100),
    model=st.sampled_from(MODELS),
)
def test_queue_ahead_stays_within_zero_and_the_displayed_size(
    ahead: int, behind: int, after: int, traded: int, model: object
) -> None:
    position = QueuePosition(ahead=ahead)
    model.on_trade(position, traded)  # type: ignore[attr-defined]
    model.on_level_change(position, ahead + behind, after)  # type: ignore[attr-defined]
    assert 0 <= position.ahead <= min(ahead, after)
