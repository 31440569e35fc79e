"""Specs for deterministic sequential ids."""

from __future__ import annotations

import pytest

from predator.core.ids import IdGenerator


def test_ids_are_sequential_and_zero_padded() -> None:
    orders = IdGenerator("O")
    assert [orders.next_id() for _ in range(3)] == ["O-000001", "O-000002", "O-000003"]
    assert orders.last == 3


def test_two_generators_with_the_same_prefix_issue_the_same_ids() -> None:
    a, b = IdGenerator("T"), IdGenerator("T")
    assert [a.next_id() for _ in range(5)] == [b.next_id() for _ in range(5)]


def test_width_and_start_are_configurable() -> None:
    trades = IdGenerator("T", width=3, start=42)
    assert trades.last == 41
    assert trades.next_id() == "T-042"


def test_ids_keep_growing_past_the_width() -> None:
    ids = IdGenerator("O", width=2, start=99)
    assert [ids.next_id(), ids.next_id()] == ["O-99", "O-100"]


def test_observing_replayed_ids_resumes_after_the_highest() -> None:
    orders = IdGenerator("O")
    for seen in ("O-000007", "O-000003", "T-000099", "O-abc", "junk"):
        orders.observe(seen)
    assert orders.next_id() == "O-000008"
    orders.observe("O-000002")
    assert orders.next_id() == "O-000009"


def test_number_of_reads_back_only_this_generators_ids() -> None:
    orders = IdGenerator("BUY-O")
    assert orders.number_of(orders.next_id()) == 1
    assert orders.number_of("O-000001") is None
    assert orders.number_of("BUY-O-") is None


@pytest.mark.parametrize(
    ("prefix", "width", "start"), [("", 6, 1), ("O X", 6, 1), ("O", 0, 1), ("O", 6, 0)]
)
def test_invalid_settings_are_refused(prefix: str, width: int, start: int) -> None:
    with pytest.raises(ValueError):
        IdGenerator(prefix, width=width, start=start)
