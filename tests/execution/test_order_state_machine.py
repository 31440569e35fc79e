"""Specs for the order state machine: which moves an Order may make, and which it refuses."""

from __future__ import annotations

import pytest

from predator.execution import InvalidTransition, Order, OrderStatus
from predator.venue import OrderRequest, Side

S = OrderStatus

# The spec, written out independently of the implementation's table.
ALLOWED: dict[OrderStatus, set[OrderStatus]] = {
    S.INITIALIZED: {S.SUBMITTED, S.REJECTED},
    # a fill, cancel or expiry may overtake the venue's acknowledgment
    S.SUBMITTED: {
        S.ACCEPTED,
        S.REJECTED,
        S.UNKNOWN,
        S.PARTIALLY_FILLED,
        S.FILLED,
        S.CANCELED,
        S.EXPIRED,
    },
    S.ACCEPTED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.UNKNOWN},
    S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.UNKNOWN},
    # only the venue's answer resolves an unknown order, whatever that answer is
    S.UNKNOWN: {S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED},
    S.FILLED: set(),
    S.CANCELED: set(),
    S.REJECTED: set(),
    S.EXPIRED: set(),
}

# A legal path from INITIALIZED to each status.
PATH_TO: dict[OrderStatus, list[OrderStatus]] = {
    S.INITIALIZED: [],
    S.SUBMITTED: [S.SUBMITTED],
    S.ACCEPTED: [S.SUBMITTED, S.ACCEPTED],
    S.PARTIALLY_FILLED: [S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED],
    S.FILLED: [S.SUBMITTED, S.ACCEPTED, S.FILLED],
    S.CANCELED: [S.SUBMITTED, S.ACCEPTED, S.CANCELED],
    S.REJECTED: [S.SUBMITTED, S.REJECTED],
    S.EXPIRED: [S.SUBMITTED, S.ACCEPTED, S.EXPIRED],
    S.UNKNOWN: [S.SUBMITTED, S.UNKNOWN],
}


def order_in(status: OrderStatus) -> Order:
    order = Order(
        OrderRequest(client_order_id="O-1", symbol="GOOG", side=Side.BUY, quantity=1), "s"
    )
    for step in PATH_TO[status]:
        order.transition(step)
    assert order.status is status
    return order


def test_a_new_order_is_initialized_and_open() -> None:
    order = order_in(S.INITIALIZED)
    assert order.is_open
    assert (order.filled_quantity, order.fees, order.venue_order_id) == (0, 0, None)


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_transition_is_allowed_exactly_when_the_spec_allows_it(
    current: OrderStatus, target: OrderStatus
) -> None:
    order = order_in(current)
    if target in ALLOWED[current]:
        order.transition(target)
        assert order.status is target
    else:
        with pytest.raises(InvalidTransition) as info:
            order.transition(target)
        assert (info.value.current, info.value.target) == (current, target)
        assert info.value.client_order_id == "O-1"
        assert order.status is current  # a refused move changes nothing


@pytest.mark.parametrize("terminal", [S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED])
def test_terminal_orders_are_closed_and_cannot_move(terminal: OrderStatus) -> None:
    order = order_in(terminal)
    assert not order.is_open
    for target in S:
        with pytest.raises(InvalidTransition):
            order.transition(target)


@pytest.mark.parametrize("resolution", [S.FILLED, S.CANCELED])
def test_unknown_order_resolves_to_the_venues_answer(resolution: OrderStatus) -> None:
    order = order_in(S.UNKNOWN)
    assert order.is_open  # unknown is never assumed canceled
    order.transition(resolution)
    assert order.status is resolution
    assert not order.is_open


def test_invalid_transition_message_names_order_and_both_states() -> None:
    order = order_in(S.FILLED)
    with pytest.raises(InvalidTransition, match=r"order O-1: filled -> canceled not allowed"):
        order.transition(S.CANCELED)


def test_partial_fills_may_repeat_before_the_final_fill() -> None:
    order = order_in(S.ACCEPTED)
    for _ in range(3):
        order.transition(S.PARTIALLY_FILLED)
    order.transition(S.FILLED)
    assert order.status is S.FILLED
