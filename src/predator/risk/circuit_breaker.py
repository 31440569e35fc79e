"""The CircuitBreaker: stops a strategy, an engine or the whole node after repeated trouble.

It counts failures (in a row, and by rate over a time window) and losing trades, opens on
any breach, probes again after a cooldown (HALF_OPEN) and closes after enough successes.
Pure: time comes from an injected Clock; every state change is a ``BreakerStateChanged``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import StrEnum
from fractions import Fraction

import msgspec

from predator.core.clock import NS_PER_SECOND, Clock
from predator.core.events import Event
from predator.core.numbers import format_seconds

__all__ = ["BreakerConfig", "BreakerState", "BreakerStateChanged", "CircuitBreaker"]


class BreakerState(StrEnum):
    """Where a breaker stands; only OPEN refuses calls."""

    CLOSED = "closed"
    """Normal: calls flow, failures and losses are counted."""
    OPEN = "open"
    """Tripped: calls are refused until the cooldown has passed."""
    HALF_OPEN = "half_open"
    """Probing: calls flow; enough successes close the breaker, any failure reopens it."""


class BreakerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """When a breaker opens and how it recovers. Every rule is checked on its own.

    Defaults (the seed's):

    - ``consecutive_failures = 5``: five failures in a row open the breaker.
    - ``failure_rate = "0.5"`` over ``window_ns = 5 minutes`` once ``min_calls = 10`` calls
      are in the window: a failure share *strictly* above 50% opens it.
    - ``consecutive_losses = 3``: three losing trades in a row open it.
    - ``max_cumulative_loss = None`` (money units): when set, a total of losing-trade
      losses beyond it opens the breaker; that budget is spent until :meth:`reset`.
    - ``cooldown_ns = 60 s``: time OPEN before moving to HALF_OPEN.
    - ``half_open_successes = 2``: successes in HALF_OPEN that close the breaker; any
      failure (or losing trade) in HALF_OPEN opens it again.
    """

    consecutive_failures: int = 5
    failure_rate: str = "0.5"
    window_ns: int = 5 * 60 * NS_PER_SECOND
    min_calls: int = 10
    consecutive_losses: int = 3
    max_cumulative_loss: int | None = None
    cooldown_ns: int = 60 * NS_PER_SECOND
    half_open_successes: int = 2

    def __post_init__(self) -> None:
        for field in (
            "consecutive_failures",
            "min_calls",
            "consecutive_losses",
            "half_open_successes",
            "window_ns",
        ):
            value = getattr(self, field)
            if value < 1:
                raise ValueError(f"BreakerConfig.{field} must be at least 1, got {value}")
        if self.cooldown_ns < 0:
            raise ValueError(f"BreakerConfig.cooldown_ns must be >= 0, got {self.cooldown_ns}")
        if self.max_cumulative_loss is not None and self.max_cumulative_loss < 0:
            raise ValueError(
                f"BreakerConfig.max_cumulative_loss must be >= 0, got {self.max_cumulative_loss}"
            )
        rate = _parse_fraction("failure_rate", self.failure_rate)
        if not 0 <= rate <= 1:
            raise ValueError(f"BreakerConfig.failure_rate must be in [0, 1], got {rate}")

    @property
    def failure_rate_fraction(self) -> Fraction:
        """``failure_rate`` as an exact fraction."""
        return Fraction(self.failure_rate)


class BreakerStateChanged(Event, frozen=True, kw_only=True):
    """A breaker moved from ``previous`` to ``state``; ``scope`` names what it guards.

    Scopes read ``"strategy:sma_cross"``, ``"engine:trend"`` or ``"global"``.
    """

    scope: str
    previous: BreakerState
    state: BreakerState
    reason: str


class BreakerSavedState(msgspec.Struct, frozen=True, kw_only=True):
    """A breaker's complete state, as a snapshot of derived state keeps it."""

    state: BreakerState
    opened_at: int | None
    consecutive_failures: int
    window: list[tuple[int, bool]]
    window_failures: int
    loss_streak: int
    cumulative_loss: int
    half_open_successes: int
    trips: int
    successes: int
    failures: int
    last_reason: str | None
    last_failure: str | None


class CircuitBreaker:
    """A three-state circuit breaker over calls and trade results.

    >>> from predator.core.clock import TimeWarp
    >>> clock = TimeWarp.virtual(0)
    >>> breaker = CircuitBreaker("strategy:sma_cross", BreakerConfig(), clock)
    >>> for _ in range(5):
    ...     breaker.record_failure("on_bar raised")
    >>> breaker.allow()
    False
    >>> clock.advance(60 * NS_PER_SECOND)
    >>> breaker.state
    <BreakerState.HALF_OPEN: 'half_open'>

    Results that arrive while OPEN (an in-flight call, a position closed at a loss) are
    counted but do not change the state or extend the cooldown.
    """

    def __init__(
        self,
        scope: str,
        config: BreakerConfig,
        clock: Clock,
        publish: Callable[[Event], None] | None = None,
    ) -> None:
        self.scope = scope
        self.config = config
        self._clock = clock
        self._publish = publish
        self._rate = config.failure_rate_fraction
        self._state = BreakerState.CLOSED
        self._opened_at: int | None = None
        self._consecutive_failures = 0
        self._window: deque[tuple[int, bool]] = deque()  # (ts, failed) of calls while CLOSED
        self._window_failures = 0
        self._loss_streak = 0
        self._cumulative_loss = 0
        self._half_open_successes = 0
        self.trips = 0
        """How many times the breaker has opened."""
        self.successes = 0
        self.failures = 0
        self.last_reason: str | None = None
        """Why the breaker last changed state."""
        self.last_failure: str | None = None

    # -- reading --------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose cooldown has passed turns HALF_OPEN here."""
        if self._state is BreakerState.OPEN and self._opened_at is not None:
            now = self._clock.now_ns()
            if now - self._opened_at >= self.config.cooldown_ns:
                self._move(
                    BreakerState.HALF_OPEN,
                    f"cooldown of {format_seconds(self.config.cooldown_ns)} elapsed",
                    now,
                )
        return self._state

    @property
    def opened_at(self) -> int | None:
        """When the breaker last opened (ns), or ``None`` once it has closed again."""
        return self._opened_at

    @property
    def cumulative_loss(self) -> int:
        """Sum of losing-trade losses (money units, positive) since creation or reset."""
        return self._cumulative_loss

    def allow(self) -> bool:
        """True when a call may go ahead (CLOSED or HALF_OPEN)."""
        return self.state is not BreakerState.OPEN

    def snapshot(self) -> dict[str, object]:
        """The breaker's counters for status reports (plain JSON-friendly values)."""
        state = self.state
        now = self._clock.now_ns()
        self._prune(now)
        half_open_at = None
        if state is BreakerState.OPEN and self._opened_at is not None:
            half_open_at = self._opened_at + self.config.cooldown_ns
        return {
            "scope": self.scope,
            "state": state.value,
            "consecutive_failures": self._consecutive_failures,
            "window_calls": len(self._window),
            "window_failures": self._window_failures,
            "loss_streak": self._loss_streak,
            "cumulative_loss": self._cumulative_loss,
            "half_open_successes": self._half_open_successes,
            "successes": self.successes,
            "failures": self.failures,
            "trips": self.trips,
            "last_reason": self.last_reason,
            "last_failure": self.last_failure,
            "opened_at": self._opened_at,
            "half_open_at": half_open_at,
        }

    # -- recording ------------------------------------------------------------------
    def record_success(self) -> None:
        """A guarded call succeeded."""
        state = self.state
        now = self._clock.now_ns()
        self.successes += 1
        self._consecutive_failures = 0
        if state is BreakerState.HALF_OPEN:
            self._half_open_successes += 1
            needed = self.config.half_open_successes
            if self._half_open_successes >= needed:
                self._move(BreakerState.CLOSED, f"{needed} successes while half-open", now)
        elif state is BreakerState.CLOSED:
            self._add_call(now, failed=False)
            self._check_rate(now, "")

    def record_failure(self, reason: str) -> None:
        """A guarded call failed; ``reason`` says how (kept for the report)."""
        state = self.state
        now = self._clock.now_ns()
        self.failures += 1
        self._consecutive_failures += 1
        self.last_failure = reason
        if state is BreakerState.HALF_OPEN:
            self._move(BreakerState.OPEN, f"failure while half-open: {reason}", now)
        elif state is BreakerState.CLOSED:
            self._add_call(now, failed=True)
            limit = self.config.consecutive_failures
            if self._consecutive_failures >= limit:
                self._move(BreakerState.OPEN, f"{limit} consecutive failures, last: {reason}", now)
            else:
                self._check_rate(now, f", last: {reason}")

    def record_trade(self, pnl: int) -> None:
        """A trade closed with net ``pnl`` (money units); ``pnl < 0`` is a losing trade.

        A loss extends the loss streak and adds to the cumulative loss; any other trade
        ends the streak. A losing trade while HALF_OPEN counts as a failed probe.
        """
        state = self.state
        if pnl >= 0:
            self._loss_streak = 0
            return
        now = self._clock.now_ns()
        self._loss_streak += 1
        self._cumulative_loss += -pnl
        if state is BreakerState.HALF_OPEN:
            self._move(BreakerState.OPEN, f"losing trade ({pnl}) while half-open", now)
        elif state is BreakerState.CLOSED:
            budget = self.config.max_cumulative_loss
            if self._loss_streak >= self.config.consecutive_losses:
                self._move(BreakerState.OPEN, f"{self._loss_streak} consecutive losing trades", now)
            elif budget is not None and self._cumulative_loss > budget:
                self._move(
                    BreakerState.OPEN,
                    f"cumulative loss {self._cumulative_loss} beyond {budget}",
                    now,
                )

    def trip(self, reason: str) -> None:
        """Open the breaker now (manual); when already OPEN, restart its cooldown."""
        now = self._clock.now_ns()
        if self.state is BreakerState.OPEN:
            self._opened_at = now
            return
        self._move(BreakerState.OPEN, reason, now)

    def reset(self, reason: str) -> None:
        """Close the breaker and clear every counter, the cumulative loss included."""
        now = self._clock.now_ns()
        self._cumulative_loss = 0
        if self._state is BreakerState.CLOSED:
            self._clear_counters()
            return
        self._move(BreakerState.CLOSED, reason, now)

    # -- durable state ----------------------------------------------------------------
    def export_state(self) -> BreakerSavedState:
        """Everything the breaker knows, for a snapshot of derived state (exact)."""
        return BreakerSavedState(
            state=self._state,
            opened_at=self._opened_at,
            consecutive_failures=self._consecutive_failures,
            window=list(self._window),
            window_failures=self._window_failures,
            loss_streak=self._loss_streak,
            cumulative_loss=self._cumulative_loss,
            half_open_successes=self._half_open_successes,
            trips=self.trips,
            successes=self.successes,
            failures=self.failures,
            last_reason=self.last_reason,
            last_failure=self.last_failure,
        )

    def load_state(self, saved: BreakerSavedState) -> None:
        """Take the state :meth:`export_state` gave, publishing nothing."""
        self._state = saved.state
        self._opened_at = saved.opened_at
        self._consecutive_failures = saved.consecutive_failures
        self._window = deque((ts, failed) for ts, failed in saved.window)
        self._window_failures = saved.window_failures
        self._loss_streak = saved.loss_streak
        self._cumulative_loss = saved.cumulative_loss
        self._half_open_successes = saved.half_open_successes
        self.trips = saved.trips
        self.successes = saved.successes
        self.failures = saved.failures
        self.last_reason = saved.last_reason
        self.last_failure = saved.last_failure

    def replay(self, event: BreakerStateChanged) -> None:
        """Apply a journaled state change of this breaker, publishing nothing.

        Recovery uses it for the changes journaled after the last snapshot: the state, its
        time and the trip count are exact; window counters restart from the change.
        """
        if event.scope != self.scope:
            return
        self._state = event.state
        self.last_reason = event.reason
        self._half_open_successes = 0
        if event.state is BreakerState.OPEN:
            self._opened_at = event.ts
            self.trips += 1
        elif event.state is BreakerState.CLOSED:
            self._opened_at = None
            self._clear_counters()

    # -- internals ------------------------------------------------------------------
    def _add_call(self, now: int, *, failed: bool) -> None:
        self._window.append((now, failed))
        if failed:
            self._window_failures += 1
        self._prune(now)

    def _prune(self, now: int) -> None:
        cutoff = now - self.config.window_ns
        window = self._window
        while window and window[0][0] <= cutoff:
            _, failed = window.popleft()
            if failed:
                self._window_failures -= 1

    def _check_rate(self, now: int, detail: str) -> None:
        calls = len(self._window)
        if calls < self.config.min_calls:
            return
        if Fraction(self._window_failures, calls) > self._rate:
            self._move(
                BreakerState.OPEN,
                f"failure rate {self._window_failures}/{calls} above {self.config.failure_rate} "
                f"over {format_seconds(self.config.window_ns)}{detail}",
                now,
            )

    def _clear_counters(self) -> None:
        self._consecutive_failures = 0
        self._window.clear()
        self._window_failures = 0
        self._loss_streak = 0
        self._half_open_successes = 0

    def _move(self, state: BreakerState, reason: str, now: int) -> None:
        previous, self._state = self._state, state
        self.last_reason = reason
        self._half_open_successes = 0
        if state is BreakerState.OPEN:
            self._opened_at = now
            self.trips += 1
        elif state is BreakerState.CLOSED:
            self._opened_at = None
            self._clear_counters()
        if self._publish is not None:
            self._publish(
                BreakerStateChanged(
                    ts=now, scope=self.scope, previous=previous, state=state, reason=reason
                )
            )

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.scope!r}, state={self._state.value}, trips={self.trips})"


def _parse_fraction(field: str, value: str) -> Fraction:
    try:
        return Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise ValueError(f"BreakerConfig.{field} must be a decimal string, got {value!r}") from exc
