"""The kernel clock: the only place in Predator that reads real time.

Components receive a :class:`Clock` and ask it ``now_ns()``. The kernel hands them a
:class:`TimeWarp` (virtual time for simulation, scaled wall time for accelerated war
tests) or a :class:`WallClock` (real UTC time for live trading).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["NS_PER_SECOND", "Clock", "TimeWarp", "WallClock", "WallSource", "iso_utc"]

NS_PER_SECOND = 1_000_000_000
"""Nanoseconds in one second (kernel timestamps are integer nanoseconds)."""

WallSource = Callable[[], int]
"""A monotonic nanosecond counter (``time.monotonic_ns`` in production, a fake in tests)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """Anything that tells the current time as UTC nanoseconds since the Unix epoch."""

    def now_ns(self) -> int:
        """The current time in UTC nanoseconds since 1970-01-01T00:00:00Z."""
        ...


def iso_utc(ts_ns: int) -> str:
    """Format kernel nanoseconds as ISO 8601 UTC with nanosecond precision.

    >>> iso_utc(1_677_628_800_000_000_001)
    '2023-03-01T00:00:00.000000001Z'
    """
    seconds, nanos = divmod(ts_ns, NS_PER_SECOND)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


class WallClock:
    """Real UTC time, for the live runtime. Never use it in a simulation."""

    __slots__ = ()

    def now_ns(self) -> int:
        """The real current time in UTC nanoseconds."""
        return time.time_ns()

    def sleep_until(self, ts_ns: int) -> float:
        """Wall seconds to wait until ``ts_ns`` (``0.0`` when it has passed)."""
        return max(0, ts_ns - time.time_ns()) / NS_PER_SECOND


class TimeWarp:
    """The kernel clock, in one of two modes chosen at construction.

    *Virtual* (:meth:`virtual`): time stands still until the kernel moves it with
    :meth:`set` or :meth:`advance`; this is the simulation clock that the
    :class:`~predator.core.scheduler.ScenarioClock` drives. ``now_ns()`` is an
    attribute read, cheap enough to call for every event.

    *Scaled* (:meth:`scaled`): simulated time runs ``speed`` times faster than a
    monotonic wall source while running; it can be paused, resumed and re-sped without
    a jump. ``set``/``advance`` jump it forward (skip a quiet weekend, for instance).

    In both modes time never goes backwards: moving it back raises ``ValueError``.

    >>> clock = TimeWarp.virtual(start_ns=1_000)
    >>> clock.advance(500)
    >>> clock.now_ns()
    1500
    """

    __slots__ = ("_anchor_ns", "_anchor_wall", "_den", "_num", "_running", "_speed", "_wall")

    def __init__(self, start_ns: int = 0) -> None:
        """A virtual clock at ``start_ns``; prefer :meth:`virtual` or :meth:`scaled`."""
        # Virtual mode keeps the time in _anchor_ns; scaled mode keeps there the
        # simulated time at the wall instant _anchor_wall.
        self._anchor_ns = start_ns
        self._wall: WallSource | None = None
        self._anchor_wall = 0
        self._speed = 1.0
        self._num = 1
        self._den = 1
        self._running = True

    # -- construction -------------------------------------------------------------------
    @classmethod
    def virtual(cls, start_ns: int = 0) -> TimeWarp:
        """A simulation clock standing at ``start_ns`` until :meth:`set` or :meth:`advance`."""
        return cls(start_ns)

    @classmethod
    def scaled(
        cls,
        speed: float = 60.0,
        start_ns: int | None = None,
        wall: WallSource | None = None,
    ) -> TimeWarp:
        """A clock running ``speed`` times faster than ``wall`` (``time.monotonic_ns``).

        Simulated time starts at ``start_ns`` (default: the real UTC time now) and the
        clock starts running at once.
        """
        source = time.monotonic_ns if wall is None else wall
        clock = cls(time.time_ns() if start_ns is None else start_ns)
        clock._wall = source
        clock._set_speed(speed)
        clock._anchor_wall = source()
        return clock

    # -- reading ------------------------------------------------------------------------
    def now_ns(self) -> int:
        """The current simulated time in UTC nanoseconds."""
        if self._wall is None:
            return self._anchor_ns
        if not self._running:
            return self._anchor_ns
        # Exact integer scaling (speed as a ratio) keeps the clock monotonic and free
        # of float drift however long it runs.
        elapsed = self._wall() - self._anchor_wall
        return self._anchor_ns + elapsed * self._num // self._den

    @property
    def is_virtual(self) -> bool:
        """True for a simulation clock moved only by :meth:`set` and :meth:`advance`."""
        return self._wall is None

    @property
    def running(self) -> bool:
        """False while a scaled clock is paused (a virtual clock always counts as running)."""
        return self._running

    # -- moving -------------------------------------------------------------------------
    def set(self, ts_ns: int) -> None:
        """Move the clock to ``ts_ns``; raise ``ValueError`` if that is in the past."""
        now = self.now_ns()
        if ts_ns < now:
            raise ValueError(
                f"time cannot go backwards: clock is at {_describe(now)}, "
                f"asked to move to {_describe(ts_ns)}"
            )
        self._anchor_ns = ts_ns
        if self._wall is not None:
            self._anchor_wall = self._wall()

    def advance(self, delta_ns: int) -> None:
        """Move the clock forward by ``delta_ns`` (negative deltas raise ``ValueError``)."""
        self.set(self.now_ns() + delta_ns)

    # -- scaled mode --------------------------------------------------------------------
    @property
    def speed(self) -> float:
        """Simulated seconds per wall second of a scaled clock; settable while running."""
        self._require_scaled("speed")
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._require_scaled("speed")
        self._reanchor()
        self._set_speed(value)

    def pause(self) -> None:
        """Stop a scaled clock; ``now_ns()`` holds still until :meth:`resume`."""
        self._require_scaled("pause()")
        self._reanchor()
        self._running = False

    def resume(self) -> None:
        """Restart a paused scaled clock from where it stopped (no jump)."""
        wall = self._require_scaled("resume()")
        if not self._running:
            self._anchor_wall = wall()
            self._running = True

    def sleep_until(self, ts_ns: int) -> float:
        """Wall seconds to wait until simulated time reaches ``ts_ns``.

        ``0.0`` when it has already passed, and always for a virtual clock (a simulation
        never waits: its scheduler moves the clock). ``math.inf`` while paused.
        """
        remaining = ts_ns - self.now_ns()
        if self._wall is None or remaining <= 0:
            return 0.0
        if not self._running:
            return math.inf
        return remaining * self._den / self._num / NS_PER_SECOND

    # -- internals ----------------------------------------------------------------------
    def _require_scaled(self, what: str) -> WallSource:
        if self._wall is None:
            raise RuntimeError(f"{what} needs a scaled TimeWarp; this one is virtual")
        return self._wall

    def _reanchor(self) -> None:
        self._anchor_ns = self.now_ns()
        if self._wall is not None:
            self._anchor_wall = self._wall()

    def _set_speed(self, value: float) -> None:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"speed must be a positive finite number, got {value!r}")
        self._speed = float(value)
        self._num, self._den = self._speed.as_integer_ratio()

    def __repr__(self) -> str:
        if self._wall is None:
            return f"TimeWarp.virtual(ts={_describe(self._anchor_ns)})"
        state = "running" if self._running else "paused"
        return f"TimeWarp.scaled(speed={self._speed}, {state}, ts={_describe(self.now_ns())})"


def _describe(ts_ns: int) -> str:
    """``ts_ns`` with its ISO form, for error messages: ``5 (1970-01-01T...Z)``."""
    return f"{ts_ns} ({iso_utc(ts_ns)})"
