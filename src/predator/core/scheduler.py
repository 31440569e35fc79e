"""The discrete-event loop of the simulation runtime.

:class:`ScenarioClock` keeps a priority queue of timed callbacks and runs them in time
order, moving a virtual :class:`~predator.core.clock.TimeWarp` to each callback's time
first; equal times run in the order they were scheduled, so a run is deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, TypeVarTuple, Unpack

from predator.core.clock import TimeWarp

__all__ = ["ScenarioClock", "ScheduledCall"]

Ts = TypeVarTuple("Ts")


class ScheduledCall:
    """The handle of one scheduled callback; pass it to :meth:`ScenarioClock.cancel`."""

    __slots__ = ("args", "at_ns", "callback", "cancelled", "done", "owner", "seq")

    def __init__(
        self,
        owner: ScenarioClock,
        at_ns: int,
        seq: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        self.owner = owner
        self.at_ns = at_ns
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False
        self.done = False

    @property
    def pending(self) -> bool:
        """True while the call is still queued (neither run nor cancelled)."""
        return not (self.cancelled or self.done)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "done" if self.done else "pending"
        name = getattr(self.callback, "__qualname__", repr(self.callback))
        return f"<ScheduledCall #{self.seq} at {self.at_ns} {name} {state}>"


class ScenarioClock:
    """A priority queue of timed callbacks driving a virtual ``TimeWarp``.

    Callbacks run in non-decreasing time order; ties run first-scheduled first.
    Before each callback the clock is set to its time, so ``clock.now_ns()`` inside
    the callback is the scheduled time. Callbacks may schedule further callbacks,
    including at the current time (they run after the ones already queued for it).

    >>> sim = ScenarioClock()
    >>> seen = []
    >>> _ = sim.schedule(20, seen.append, "b")
    >>> _ = sim.schedule(10, seen.append, "a")
    >>> sim.run()
    2
    >>> seen, sim.clock.now_ns()
    (['a', 'b'], 20)
    """

    __slots__ = ("_clock", "_heap", "_live", "_seq")

    def __init__(self, clock: TimeWarp | None = None) -> None:
        """Drive ``clock`` (a virtual ``TimeWarp``; a new one at 0 by default)."""
        if clock is None:
            clock = TimeWarp.virtual()
        if not clock.is_virtual:
            raise ValueError("ScenarioClock drives a virtual TimeWarp, got a scaled one")
        self._clock = clock
        self._heap: list[tuple[int, int, ScheduledCall]] = []
        self._seq = 0
        self._live = 0

    @property
    def clock(self) -> TimeWarp:
        """The virtual clock this scheduler moves."""
        return self._clock

    def __len__(self) -> int:
        """Number of pending (not yet run, not cancelled) callbacks."""
        return self._live

    @property
    def next_time(self) -> int | None:
        """Time of the next pending callback, or ``None`` when nothing is pending."""
        head = self._head()
        return None if head is None else head.at_ns

    # -- scheduling ---------------------------------------------------------------------
    def schedule(
        self, at_ns: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts
    ) -> ScheduledCall:
        """Run ``callback(*args)`` at ``at_ns``; raise ``ValueError`` if that is past."""
        now = self._clock.now_ns()
        if at_ns < now:
            raise ValueError(f"cannot schedule in the past: at_ns={at_ns} < now={now}")
        seq = self._seq
        self._seq = seq + 1
        call = ScheduledCall(self, at_ns, seq, callback, args)
        heapq.heappush(self._heap, (at_ns, seq, call))
        self._live += 1
        return call

    def schedule_in(
        self, delay_ns: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts
    ) -> ScheduledCall:
        """Run ``callback(*args)`` ``delay_ns`` after the current time."""
        if delay_ns < 0:
            raise ValueError(f"cannot schedule in the past: delay_ns={delay_ns} < 0")
        return self.schedule(self._clock.now_ns() + delay_ns, callback, *args)

    def cancel(self, call: ScheduledCall) -> bool:
        """Drop a pending call; return False if it already ran or was cancelled."""
        if call.owner is not self:
            raise ValueError(f"{call!r} belongs to another ScenarioClock")
        if not call.pending:
            return False
        # Lazy deletion: the heap entry stays and is skipped when it surfaces.
        call.cancelled = True
        self._live -= 1
        return True

    # -- running ------------------------------------------------------------------------
    def step(self) -> bool:
        """Run the next pending callback; return False when there was none."""
        call = self._head()
        if call is None:
            return False
        self._fire(call)
        return True

    def run_until(self, ts_ns: int) -> int:
        """Run every callback due at or before ``ts_ns``, then set the clock to ``ts_ns``.

        Returns the number of callbacks run. ``ts_ns`` in the past raises ``ValueError``.
        """
        now = self._clock.now_ns()
        if ts_ns < now:
            raise ValueError(f"cannot run until the past: ts_ns={ts_ns} < now={now}")
        heap = self._heap
        count = 0
        while heap and heap[0][0] <= ts_ns:
            call = heap[0][2]
            if call.cancelled:
                heapq.heappop(heap)
                continue
            self._fire(call)
            count += 1
        self._clock.set(ts_ns)
        return count

    def run(self) -> int:
        """Run callbacks until none is pending; return how many ran.

        A callback that always reschedules itself keeps this loop going forever: bound
        such runs with :meth:`run_until`.
        """
        heap = self._heap
        count = 0
        while heap:
            call = heap[0][2]
            if call.cancelled:
                heapq.heappop(heap)
                continue
            self._fire(call)
            count += 1
        return count

    # -- internals ----------------------------------------------------------------------
    def _head(self) -> ScheduledCall | None:
        heap = self._heap
        while heap:
            call = heap[0][2]
            if not call.cancelled:
                return call
            heapq.heappop(heap)
        return None

    def _fire(self, call: ScheduledCall) -> None:
        # ``call`` is the heap head. Move the clock before popping, so a clock that was
        # moved past the queue by someone else leaves the call queued and the error clear.
        self._clock.set(call.at_ns)
        heapq.heappop(self._heap)
        call.done = True
        self._live -= 1
        call.callback(*call.args)

    def __repr__(self) -> str:
        return f"<ScenarioClock pending={self._live} next={self.next_time} {self._clock!r}>"
