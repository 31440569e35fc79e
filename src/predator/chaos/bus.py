"""The chaos bus: where the chaos layer reports what it injects, apart from the trading bus.

Nothing on it is journaled into the trading journal. Events of one instant are delivered
by priority (crash before venue before bus ...) and then in publication order; every
delivered event is kept in ``log`` for campaign reports.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from predator.chaos.events import ChaosEvent

__all__ = ["ChaosBus"]

Handler = Callable[[Any], Any]


class ChaosBus:
    """Publish/subscribe for chaos events, ordered by (ts, priority desc, seq).

    ``publish`` delivers at once unless a :meth:`batch` is open or a delivery is under
    way (a handler publishing): then the event waits, and the queue drains in order.

    >>> from predator.chaos.events import FaultCleared, FaultInjected
    >>> bus = ChaosBus()
    >>> with bus.batch():
    ...     bus.publish(FaultCleared(ts=1, fault_id="a", kind="bus_drop"))
    ...     bus.publish(FaultInjected(ts=1, fault_id="b", kind="process_crash", target="node"))
    >>> [type(e).__name__ for e in bus.log]
    ['FaultInjected', 'FaultCleared']
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[type, Handler]] = []
        self._queue: list[tuple[int, int, int, ChaosEvent]] = []
        self._seq = 0
        self._holding = 0
        self.log: list[ChaosEvent] = []

    def subscribe(self, event_type: type[ChaosEvent], handler: Handler) -> None:
        """Deliver every published ``event_type`` (or subclass) to ``handler``."""
        self._subscribers.append((event_type, handler))

    def publish(self, event: ChaosEvent) -> None:
        """Queue ``event`` and deliver everything due (unless held by a batch)."""
        self._seq += 1
        heapq.heappush(self._queue, (event.ts, -event.priority, self._seq, event))
        if not self._holding:
            self._drain()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold deliveries until the block ends, then deliver in priority order."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding:
            self._drain()

    def _drain(self) -> None:
        self._holding += 1
        try:
            while self._queue:
                event = heapq.heappop(self._queue)[3]
                self.log.append(event)
                for event_type, handler in self._subscribers:
                    if isinstance(event, event_type):
                        handler(event)
        finally:
            self._holding -= 1

    def of_type(self, event_type: type[ChaosEvent]) -> list[ChaosEvent]:
        """The logged events of ``event_type`` (or a subclass), in delivery order."""
        return [event for event in self.log if isinstance(event, event_type)]
