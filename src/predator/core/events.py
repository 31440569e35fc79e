"""Base types for everything that travels on the bus and into the journal.

Events are immutable past-tense facts; commands are imperative requests. Both are
frozen ``msgspec`` structs tagged with their class name, so the journal serialises
any of them without hand-written code.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

__all__ = ["Command", "Event", "Message"]


class Message(msgspec.Struct, frozen=True, tag=True, kw_only=True, gc=False):
    """Anything the :class:`~predator.core.bus.MessageBus` carries."""


class Event(Message, frozen=True, kw_only=True):
    """A fact that happened (``OrderFilled``); ``ts`` is kernel-clock nanoseconds (UTC).

    ``journaled`` (a class attribute) says whether the journal records it: state
    changes are journaled; inputs that can be replayed from data (bars) are not.
    ``write_ahead`` (a class attribute): the node commits its journal as soon as it
    records one (a control decision a crash must not undo; the node has its own list
    too: orders sent, incidents, halts and resumptions).
    """

    journaled: ClassVar[bool] = True
    write_ahead: ClassVar[bool] = False
    ts: int


class Command(Message, frozen=True, kw_only=True):
    """A request with exactly one handler (``SubmitOrder``)."""
