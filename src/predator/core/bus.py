"""The message bus: the only way components talk to each other.

Facts are published to every subscriber of their type (and of its base types);
commands go to their one registered handler. A single :class:`Interceptor` hook sees
every message before delivery, which is where the chaos layer delays, drops,
duplicates or reorders messages without touching the components.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from predator.core.events import Command, Event, Message

__all__ = ["Interceptor", "MessageBus", "NoHandler"]

E = TypeVar("E", bound=Event)
C = TypeVar("C", bound=Command)
Handler = Callable[[Any], Any]
TypeFilter = Callable[[type], bool]


class _Vetoed(Exception):
    """A guard stopped the message: delivery ends here."""


class NoHandler(LookupError):
    """A command was sent that no component handles."""

    def __init__(self, command_type: type) -> None:
        super().__init__(f"no handler registered for command {command_type.__name__}")
        self.command_type = command_type


class Interceptor(Protocol):
    """Decides what happens to a message on its way to delivery.

    ``deliver`` performs the normal delivery; an interceptor may call it now, later
    (delay, reorder), several times (duplicate), never (drop) or with another message
    (corrupt). For a command it must return what ``deliver`` returned, or ``None``
    when the command was dropped.
    """

    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any: ...


class MessageBus:
    """Typed publish/subscribe for events plus single-handler commands.

    Delivery is synchronous and in subscription order (across base-type and exact-type
    subscriptions alike), so a simulation run is deterministic. A handler subscribed to
    a base type (``Event``) receives every subclass, which is how the journal records
    everything.

    >>> bus = MessageBus()
    >>> seen = []
    >>> bus.subscribe(Event, seen.append)
    """

    def __init__(self) -> None:
        self._subscribers: dict[type, list[tuple[int, Handler, TypeFilter | None]]] = {}
        self._subscription_seq = 0
        self._resolved: dict[type, tuple[Handler, ...]] = {}
        self._commands: dict[type, Handler] = {}
        self._interceptor: Interceptor | None = None
        self._guards: dict[type, Callable[[Any], bool]] = {}
        self._taps: list[tuple[type, Handler, TypeFilter | None]] = []
        self._tap_resolved: dict[type, tuple[Handler, ...]] = {}
        self.published = 0

    # -- events ---------------------------------------------------------------------
    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[E], Any],
        *,
        where: TypeFilter | None = None,
    ) -> None:
        """Deliver every published ``event_type`` (or subclass) to ``handler``.

        ``where`` filters by the concrete event *type* (``lambda t: t.journaled``); it is
        evaluated once per type, so it costs nothing per message.
        """
        self._subscription_seq += 1
        entry = (self._subscription_seq, handler, where)
        self._subscribers.setdefault(event_type, []).append(entry)
        self._resolved.clear()

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], Any]) -> None:
        """Stop delivering ``event_type`` to ``handler``."""
        entries = self._subscribers.get(event_type, [])
        for entry in entries:
            if entry[1] == handler:
                entries.remove(entry)
                break
        else:
            raise ValueError(f"{handler!r} is not subscribed to {event_type.__name__}")
        self._resolved.clear()

    def handlers_for(self, event_type: type) -> tuple[Handler, ...]:
        """The handlers an event of ``event_type`` reaches, in delivery order."""
        handlers = self._resolved.get(event_type)
        if handlers is None:
            collected: list[tuple[int, Handler]] = []
            for klass in event_type.__mro__:
                for seq, handler, where in self._subscribers.get(klass, ()):
                    if where is None or where(event_type):
                        collected.append((seq, handler))
            collected.sort(key=lambda entry: entry[0])
            handlers = self._resolved[event_type] = tuple(h for _, h in collected)
        return handlers

    def guard(self, event_type: type[E], accept: Callable[[E], bool]) -> None:
        """Let ``accept`` veto every ``event_type`` event (exact type) before delivery.

        The guard sees what would be delivered — after the interceptor, so a message the
        chaos layer corrupted too — and returns False to stop it reaching anyone (it is
        its job to say why, e.g. by publishing a fact). One guard per type.
        """
        if event_type in self._guards:
            raise ValueError(f"{event_type.__name__} already has a guard")
        self._guards[event_type] = accept

        def veto(event: E) -> None:
            if not accept(event):
                raise _Vetoed

        # First in delivery order (below any subscription's sequence number), exact type.
        entry = (-(1 << 62), veto, lambda t: t is event_type)
        self._subscribers.setdefault(event_type, []).insert(0, entry)
        self._resolved.clear()

    def tap(
        self,
        event_type: type[E],
        handler: Callable[[E], Any],
        *,
        where: TypeFilter | None = None,
    ) -> None:
        """Hand every published ``event_type`` (or subclass) to ``handler`` as it is
        published, before the interceptor: the node's own record of its facts (the
        journal), which no transport fault can delay, drop or reorder."""
        self._taps.append((event_type, handler, where))
        self._tap_resolved.clear()

    def _taps_for(self, event_type: type) -> tuple[Handler, ...]:
        taps = self._tap_resolved.get(event_type)
        if taps is None:
            taps = self._tap_resolved[event_type] = tuple(
                handler
                for base, handler, where in self._taps
                if issubclass(event_type, base) and (where is None or where(event_type))
            )
        return taps

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to its subscribers (through the interceptor, if any)."""
        self.published += 1
        if self._taps:
            taps = self._tap_resolved.get(type(event))
            if taps is None:
                taps = self._taps_for(type(event))
            for tap in taps:
                tap(event)
        if self._interceptor is not None:
            self._interceptor.intercept(event, self._deliver_event)
            return
        handlers = self._resolved.get(type(event))
        if handlers is None:
            handlers = self.handlers_for(type(event))
        try:
            for handler in handlers:
                handler(event)
        except _Vetoed:
            return

    def _deliver_event(self, event: Message) -> None:
        try:
            for handler in self.handlers_for(type(event)):
                handler(event)
        except _Vetoed:
            return

    # -- commands -------------------------------------------------------------------
    def register(self, command_type: type[C], handler: Callable[[C], Any]) -> None:
        """Make ``handler`` the one handler of ``command_type``."""
        if command_type in self._commands:
            raise ValueError(f"a handler for {command_type.__name__} is already registered")
        self._commands[command_type] = handler

    def send(self, command: Command) -> Any:
        """Hand ``command`` to its handler and return the handler's answer."""
        if self._interceptor is not None:
            return self._interceptor.intercept(command, self._deliver_command)
        return self._deliver_command(command)

    def _deliver_command(self, command: Message) -> Any:
        handler = self._commands.get(type(command))
        if handler is None:
            raise NoHandler(type(command))
        return handler(command)

    # -- chaos hook -------------------------------------------------------------------
    @property
    def interceptor(self) -> Interceptor | None:
        """The hook every message passes through (``None``: direct delivery)."""
        return self._interceptor

    @interceptor.setter
    def interceptor(self, value: Interceptor | None) -> None:
        self._interceptor = value
