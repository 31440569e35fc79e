"""A faithful process crash for tests: from one journal event on, the node is dead.

Install :class:`Crash` as the kernel bus's interceptor and subscribe its ``on_event`` to
every event: after journal event ``at`` nothing reaches a component or leaves one again,
and the journal is severed (its unflushed batch is lost, nothing more is written), as when
the process dies. The venue, outside the process, keeps running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from predator.core.events import Event, Message
from predator.ledger.journal import Journal

__all__ = ["Crash"]


class Crash:
    """Kills the node after journal event ``at``: nothing reaches it or leaves it again."""

    def __init__(self, journal: Journal, at: int) -> None:
        self.journal = journal
        self.at = at
        self.dead = False

    def on_event(self, _event: Event) -> None:
        if not self.dead and self.journal.last_seq >= self.at:
            self.dead = True
            self.journal.sever()  # the unflushed batch dies with the process

    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        return None if self.dead else deliver(message)
