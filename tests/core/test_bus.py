"""Specs for the MessageBus: events, commands and the interceptor hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from predator.core.bus import MessageBus, NoHandler
from predator.core.events import Command, Event, Message


class OrderEvent(Event, frozen=True, kw_only=True):
    order_id: str


class OrderFilled(OrderEvent, frozen=True, kw_only=True):
    quantity: int


class OrderCanceled(OrderEvent, frozen=True, kw_only=True):
    pass


class SubmitOrder(Command, frozen=True, kw_only=True):
    order_id: str


class HaltTrading(Command, frozen=True, kw_only=True):
    reason: str


def filled(n: int = 1) -> OrderFilled:
    return OrderFilled(ts=n, order_id=f"O-{n:06d}", quantity=n)


def test_subscribers_receive_events_in_subscription_order() -> None:
    bus = MessageBus()
    seen: list[str] = []
    bus.subscribe(OrderFilled, lambda e: seen.append("first"))
    bus.subscribe(OrderFilled, lambda e: seen.append("second"))
    bus.subscribe(OrderFilled, lambda e: seen.append("third"))
    bus.publish(filled())
    assert seen == ["first", "second", "third"]


def test_base_class_subscribers_receive_every_subclass() -> None:
    bus = MessageBus()
    everything: list[Event] = []
    orders: list[OrderEvent] = []
    fills: list[OrderFilled] = []
    bus.subscribe(Event, everything.append)
    bus.subscribe(OrderEvent, orders.append)
    bus.subscribe(OrderFilled, fills.append)
    fill, cancel = filled(), OrderCanceled(ts=2, order_id="O-000002")
    bus.publish(fill)
    bus.publish(cancel)
    assert everything == [fill, cancel]
    assert orders == [fill, cancel]
    assert fills == [fill]


def test_subscription_order_holds_across_base_and_exact_type_subscribers() -> None:
    bus = MessageBus()
    seen: list[str] = []
    bus.subscribe(OrderFilled, lambda e: seen.append("portfolio"))
    bus.subscribe(Event, lambda e: seen.append("journal"))
    bus.subscribe(OrderEvent, lambda e: seen.append("execution"))
    bus.publish(filled())
    assert seen == ["portfolio", "journal", "execution"]
    assert len(bus.handlers_for(OrderFilled)) == 3


def test_a_type_filter_selects_event_types_once_not_per_message() -> None:
    bus = MessageBus()
    seen: list[Event] = []
    asked: list[type] = []

    def only_fills(event_type: type) -> bool:
        asked.append(event_type)
        return issubclass(event_type, OrderFilled)

    bus.subscribe(Event, seen.append, where=only_fills)
    for n in range(3):
        bus.publish(filled(n))
        bus.publish(OrderCanceled(ts=n, order_id="x"))
    assert [type(e) for e in seen] == [OrderFilled] * 3
    assert sorted(t.__name__ for t in asked) == ["OrderCanceled", "OrderFilled"]


def test_events_of_other_types_are_not_delivered() -> None:
    bus = MessageBus()
    fills: list[OrderFilled] = []
    bus.subscribe(OrderFilled, fills.append)
    bus.publish(OrderCanceled(ts=1, order_id="O-000001"))
    assert fills == []
    assert bus.published == 1


def test_unsubscribe_stops_delivery() -> None:
    bus = MessageBus()
    seen: list[OrderFilled] = []
    bus.subscribe(OrderFilled, seen.append)
    bus.publish(filled(1))
    bus.unsubscribe(OrderFilled, seen.append)
    bus.publish(filled(2))
    assert seen == [filled(1)]


def test_unsubscribing_an_unknown_handler_raises() -> None:
    with pytest.raises(ValueError):
        MessageBus().unsubscribe(OrderFilled, print)


def test_a_command_reaches_its_one_handler_and_returns_its_answer() -> None:
    bus = MessageBus()
    bus.register(SubmitOrder, lambda c: f"accepted {c.order_id}")
    assert bus.send(SubmitOrder(order_id="O-000001")) == "accepted O-000001"


def test_a_second_handler_for_a_command_is_refused() -> None:
    bus = MessageBus()
    bus.register(SubmitOrder, lambda c: None)
    with pytest.raises(ValueError, match="SubmitOrder"):
        bus.register(SubmitOrder, lambda c: None)


def test_a_command_without_handler_raises_no_handler() -> None:
    bus = MessageBus()
    bus.register(SubmitOrder, lambda c: None)
    with pytest.raises(NoHandler, match="HaltTrading") as info:
        bus.send(HaltTrading(reason="drawdown"))
    assert info.value.command_type is HaltTrading


# -- interceptors ----------------------------------------------------------------------
class Drop:
    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        return None


class Duplicate:
    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        deliver(message)
        return deliver(message)


class Delay:
    """Holds messages until released, like a latency fault."""

    def __init__(self) -> None:
        self.held: list[tuple[Message, Callable[[Message], Any]]] = []

    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        self.held.append((message, deliver))
        return None

    def release(self, reverse: bool = False) -> None:
        held, self.held = self.held, []
        for message, deliver in reversed(held) if reverse else held:
            deliver(message)


def test_an_interceptor_can_drop_events_and_commands() -> None:
    bus = MessageBus()
    events: list[OrderFilled] = []
    commands: list[SubmitOrder] = []
    bus.subscribe(OrderFilled, events.append)
    bus.register(SubmitOrder, commands.append)
    bus.interceptor = Drop()
    bus.publish(filled())
    assert bus.send(SubmitOrder(order_id="O-000001")) is None
    assert events == []
    assert commands == []


def test_an_interceptor_can_duplicate_messages() -> None:
    bus = MessageBus()
    events: list[OrderFilled] = []
    commands: list[SubmitOrder] = []
    bus.subscribe(OrderFilled, events.append)
    bus.register(SubmitOrder, commands.append)
    bus.interceptor = Duplicate()
    bus.publish(filled())
    bus.send(SubmitOrder(order_id="O-000001"))
    assert events == [filled(), filled()]
    assert len(commands) == 2


def test_an_interceptor_can_delay_and_reorder_delivery() -> None:
    bus = MessageBus()
    events: list[OrderFilled] = []
    bus.subscribe(OrderFilled, events.append)
    delay = Delay()
    bus.interceptor = delay
    bus.publish(filled(1))
    bus.publish(filled(2))
    assert events == []
    delay.release(reverse=True)
    assert events == [filled(2), filled(1)]


def test_a_delayed_command_still_fails_loudly_when_it_has_no_handler() -> None:
    bus = MessageBus()
    delay = Delay()
    bus.interceptor = delay
    assert bus.send(HaltTrading(reason="x")) is None
    with pytest.raises(NoHandler):
        delay.release()


def test_removing_the_interceptor_restores_direct_delivery() -> None:
    bus = MessageBus()
    events: list[OrderFilled] = []
    bus.subscribe(OrderFilled, events.append)
    bus.interceptor = Drop()
    assert isinstance(bus.interceptor, Drop)
    bus.publish(filled(1))
    bus.interceptor = None
    bus.publish(filled(2))
    assert events == [filled(2)]
