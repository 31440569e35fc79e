"""The EmergencyStop: the kill switch at global, engine and strategy level.

A trip halts its scope at once (cancel-all / flatten callbacks) and is journaled with a
reason, an actor and a trigger; only a recorded ``OperatorApproved`` lets an operator
reset it, never time. ``EmergencyStop.restore`` rebuilds the state from the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from predator.core.clock import NS_PER_SECOND, Clock, iso_utc
from predator.core.events import Event
from predator.core.numbers import format_units
from predator.ledger.journal import JournalRecord
from predator.risk.config import KillSwitchSection

__all__ = [
    "NS_PER_DAY",
    "ApprovalRefused",
    "EmergencyActionFailed",
    "EmergencyStop",
    "EmergencyStopSnapshot",
    "InvalidScope",
    "KillScope",
    "KillSwitchReset",
    "KillSwitchTripped",
    "KillTrigger",
    "NotTripped",
    "OperatorApproved",
    "RestoreFailed",
    "ResumeNotApproved",
    "TripStatus",
]

NS_PER_DAY = 86_400 * NS_PER_SECOND
"""Nanoseconds in one UTC day (kernel time has no leap seconds)."""

ScopeAction = Callable[[str], object]
"""A cancel-all or flatten action; receives the scope that tripped."""


# -- scopes and triggers ----------------------------------------------------------------
class InvalidScope(ValueError):
    """A scope string is not ``global``, ``engine:<name>`` or ``strategy:<name>``."""

    def __init__(self, scope: object) -> None:
        super().__init__(
            f"invalid kill-switch scope {scope!r}: expected 'global', 'engine:<name>' "
            "or 'strategy:<name>'"
        )
        self.scope = scope


class KillScope:
    """Builds and checks scope strings; a scope is a plain ``str`` so it journals as one.

    >>> KillScope.engine("trend"), KillScope.parse("strategy:sma")
    ('engine:trend', ('strategy', 'sma'))
    """

    GLOBAL: ClassVar[str] = "global"
    KINDS: ClassVar[tuple[str, ...]] = ("engine", "strategy")

    @staticmethod
    def global_() -> str:
        """The scope that halts everything."""
        return KillScope.GLOBAL

    @staticmethod
    def engine(name: str) -> str:
        """The scope of one engine (all its strategies)."""
        return KillScope.validate(f"engine:{name}")

    @staticmethod
    def strategy(name: str) -> str:
        """The scope of one strategy."""
        return KillScope.validate(f"strategy:{name}")

    @staticmethod
    def parse(scope: str) -> tuple[str, str | None]:
        """``("global", None)``, ``("engine", name)`` or ``("strategy", name)``."""
        if scope == KillScope.GLOBAL:
            return scope, None
        if not isinstance(scope, str):
            raise InvalidScope(scope)
        kind, sep, name = scope.partition(":")
        if not sep or kind not in KillScope.KINDS or not name or name != name.strip():
            raise InvalidScope(scope)
        return kind, name

    @staticmethod
    def validate(scope: str) -> str:
        """``scope`` itself when well formed; :class:`InvalidScope` otherwise."""
        KillScope.parse(scope)
        return scope


class KillTrigger(StrEnum):
    """Why a kill switch tripped; the ``trigger`` field is a ``str``, so others may be added."""

    MANUAL = "manual"
    LOSS_FROM_PEAK = "loss_from_peak"
    DAILY_LOSS = "daily_loss"
    RECONCILIATION_MISMATCH = "reconciliation_mismatch"
    INVARIANT_VIOLATION = "invariant_violation"
    HEARTBEAT_LOST = "heartbeat_lost"
    RESTART_STORM = "restart_storm"


# -- events -----------------------------------------------------------------------------
class KillSwitchTripped(Event, frozen=True, kw_only=True):
    """A scope was halted: who (``actor``), why (``reason``, ``trigger``), and whether
    positions are being flattened as well as orders canceled."""

    scope: str
    reason: str
    actor: str
    trigger: str
    flatten: bool


class OperatorApproved(Event, frozen=True, kw_only=True):
    """An operator approved resuming a tripped scope; the only thing that allows a reset."""

    scope: str
    actor: str
    reason: str


class KillSwitchReset(Event, frozen=True, kw_only=True):
    """A tripped scope resumed; ``approval_ts`` is the time of the approval it relied on."""

    scope: str
    actor: str
    reason: str
    approval_ts: int


class EmergencyActionFailed(Event, frozen=True, kw_only=True):
    """A cancel-all or flatten action raised during a trip; the scope stays halted."""

    scope: str
    action: str
    error: str


# -- errors -----------------------------------------------------------------------------
class ResumeNotApproved(RuntimeError):
    """A reset was asked for a scope with no operator approval since its latest trip."""

    def __init__(self, scope: str, trip: KillSwitchTripped) -> None:
        super().__init__(
            f"cannot reset {scope}: it tripped at {iso_utc(trip.ts)} "
            f"({trip.trigger} by {trip.actor}: {trip.reason}) and no operator approval "
            f"has been recorded since; an operator must approve({scope!r}, ...) first"
        )
        self.scope = scope
        self.trip = trip


class NotTripped(RuntimeError):
    """An approval or reset was asked for a scope that is not tripped."""

    def __init__(self, scope: str, action: str) -> None:
        super().__init__(f"cannot {action} {scope}: it is not tripped")
        self.scope = scope
        self.action = action


class ApprovalRefused(ValueError):
    """An approval without a named operator or a reason (resumption must be explained)."""


class RestoreFailed(ValueError):
    """A kill-switch record in the journal cannot be read; the node must not start blind."""


# -- status -----------------------------------------------------------------------------
class TripStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One tripped scope as the status views show it."""

    scope: str
    ts: int
    reason: str
    actor: str
    trigger: str
    flatten: bool
    approved_by: str | None = None
    approval_ts: int | None = None


class EmergencyStopSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the dashboard and the bot report about the kill switch."""

    tripped: tuple[TripStatus, ...]
    """Tripped scopes, sorted by scope."""
    peak_equity: int | None
    day_start_equity: int | None
    max_loss_from_peak: str
    daily_loss_limit: str | None
    failures: tuple[EmergencyActionFailed, ...]
    anomalies: tuple[str, ...]


@dataclass(slots=True)
class _Trip:
    event: KillSwitchTripped
    approval: OperatorApproved | None = None


_EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (KillSwitchTripped, OperatorApproved, KillSwitchReset)
}


class EmergencyStop:
    """Kill switch at global, engine and strategy level; resumes only on operator approval.

    ``publish`` receives every event (``bus.publish`` or ``journal.append``). ``on_trip``
    actions (cancel all orders of the scope, halt the RiskEngine) run on every trip;
    ``on_flatten`` actions (close positions) run after them when the trip flattens. A
    failing action is recorded as :class:`EmergencyActionFailed` and never stops the halt.

    >>> from predator.core.clock import TimeWarp
    >>> events: list[Event] = []
    >>> stop = EmergencyStop(TimeWarp.virtual(), events.append)
    >>> stop.trip(KillScope.engine("trend"), "venue rejects everything", actor="alice")
    True
    >>> stop.blocks("sma", "trend")
    'engine:trend tripped by alice (manual): venue rejects everything'
    """

    def __init__(
        self,
        clock: Clock,
        publish: Callable[[Event], object],
        *,
        config: KillSwitchSection | None = None,
        on_trip: Sequence[ScopeAction] = (),
        on_flatten: Sequence[ScopeAction] = (),
        money_precision: int | None = None,
    ) -> None:
        self._money_precision = money_precision
        self._clock = clock
        self._publish = publish
        self.config = config or KillSwitchSection()
        self.on_trip: list[ScopeAction] = list(on_trip)
        self.on_flatten: list[ScopeAction] = list(on_flatten)
        self._trips: dict[str, _Trip] = {}
        self._peak: int | None = None
        self._day: int | None = None
        self._day_start: int | None = None
        self._last_equity: int | None = None
        self.failures: list[EmergencyActionFailed] = []
        self.anomalies: list[str] = []

    # -- tripping -----------------------------------------------------------------------
    def trip(
        self,
        scope: str,
        reason: str,
        actor: str = "system",
        trigger: str = KillTrigger.MANUAL,
        flatten: bool = False,
    ) -> bool:
        """Halt ``scope`` now; True if this call tripped it, False if it already was.

        Idempotent while tripped, except that asking to flatten a scope tripped without
        flattening trips it again with ``flatten=True``. Action failures are recorded,
        never raised. A malformed ``scope`` raises :class:`InvalidScope`; an error from
        ``publish`` propagates, but only after the scope is halted and the actions ran.
        """
        return self._trip(scope, reason, actor, str(trigger), flatten, self._clock.now_ns())

    def _trip(
        self, scope: str, reason: str, actor: str, trigger: str, flatten: bool, ts: int
    ) -> bool:
        KillScope.validate(scope)
        current = self._trips.get(scope)
        # Already tripped: nothing new, unless an operator approved in between (a new
        # incident then needs its own trip and its own approval) or flattening is asked.
        if (
            current is not None
            and current.approval is None
            and (current.event.flatten or not flatten)
        ):
            return False
        event = KillSwitchTripped(
            ts=ts,
            scope=scope,
            # A halt is never refused for want of words; it is explained as best we can.
            reason=reason.strip() or "no reason given",
            actor=actor.strip() or "unknown",
            trigger=trigger.strip() or KillTrigger.MANUAL.value,
            flatten=flatten,
        )
        # The state changes before anything that could raise: whatever happens next, the
        # scope is halted.
        self._apply(event)
        try:
            self._publish(event)
        finally:
            self._run_actions(scope, flatten, ts)
        return True

    def _run_actions(self, scope: str, flatten: bool, ts: int) -> None:
        actions = self.on_trip + (self.on_flatten if flatten else [])
        failed: list[EmergencyActionFailed] = []
        for action in actions:
            try:
                action(scope)
            except Exception as exc:  # an action's failure must never undo or stop a halt
                name = getattr(action, "__qualname__", None) or repr(action)
                error = " ".join(f"{type(exc).__name__}: {exc}".split())
                failed.append(EmergencyActionFailed(ts=ts, scope=scope, action=name, error=error))
        self.failures.extend(failed)
        for failure in failed:
            self._publish(failure)

    # -- resuming -----------------------------------------------------------------------
    def approve(self, scope: str, actor: str, reason: str) -> OperatorApproved:
        """Record an operator's approval to resume the tripped ``scope``.

        The approval alone resumes nothing; :meth:`reset` does, and only with an approval
        recorded after the latest trip of the scope.
        """
        KillScope.validate(scope)
        if not actor.strip() or actor.strip() == "system":
            raise ApprovalRefused(f"approving {scope} needs a named operator, got {actor!r}")
        if not reason.strip():
            raise ApprovalRefused(f"approving {scope} needs a reason")
        if scope not in self._trips:
            raise NotTripped(scope, "approve")
        event = OperatorApproved(
            ts=self._clock.now_ns(), scope=scope, actor=actor.strip(), reason=reason.strip()
        )
        self._apply(event)
        self._publish(event)
        return event

    def reset(self, scope: str, actor: str, reason: str) -> KillSwitchReset:
        """Resume ``scope``; :class:`ResumeNotApproved` unless an operator approved it
        after its latest trip, :class:`NotTripped` if it is not tripped.

        Resetting ``global`` re-bases the loss checks on the last equity seen: the
        operator's approval accepts the loss so far.
        """
        KillScope.validate(scope)
        current = self._trips.get(scope)
        if current is None:
            raise NotTripped(scope, "reset")
        if current.approval is None:
            raise ResumeNotApproved(scope, current.event)
        event = KillSwitchReset(
            ts=self._clock.now_ns(),
            scope=scope,
            actor=actor.strip() or current.approval.actor,
            reason=reason.strip() or current.approval.reason,
            approval_ts=current.approval.ts,
        )
        self._apply(event)
        if scope == KillScope.GLOBAL and self._last_equity is not None:
            self._peak = self._last_equity
            self._day_start = self._last_equity
        self._publish(event)
        return event

    # -- state --------------------------------------------------------------------------
    def _apply(self, event: Event, where: str = "") -> None:
        """Move the state by one event (shared by the live path and :meth:`replay`)."""
        if isinstance(event, KillSwitchTripped):
            self._trips[event.scope] = _Trip(event)
        elif isinstance(event, OperatorApproved):
            current = self._trips.get(event.scope)
            if current is not None:
                current.approval = event
        elif isinstance(event, KillSwitchReset):
            current = self._trips.get(event.scope)
            if current is None:
                return
            if current.approval is None:
                # Fail closed: a reset the journal cannot justify does not resume.
                self.anomalies.append(
                    f"{where}reset of {event.scope} at {iso_utc(event.ts)} by {event.actor} "
                    "has no approval after the latest trip; the scope stays tripped"
                )
                return
            del self._trips[event.scope]

    def is_tripped(self, scope: str) -> bool:
        """True while exactly ``scope`` is tripped (``global`` does not count here)."""
        return scope in self._trips

    def tripped_scopes(self) -> list[str]:
        """Every tripped scope, sorted."""
        return sorted(self._trips)

    def trip_of(self, scope: str) -> KillSwitchTripped | None:
        """The latest trip of ``scope`` while it is tripped."""
        current = self._trips.get(scope)
        return None if current is None else current.event

    def blocks(self, strategy: str, engine: str) -> str | None:
        """Why ``strategy`` of ``engine`` may not trade (global, engine or strategy trip),
        or ``None`` when it may."""
        for scope in (KillScope.GLOBAL, f"engine:{engine}", f"strategy:{strategy}"):
            current = self._trips.get(scope)
            if current is not None:
                trip = current.event
                return f"{scope} tripped by {trip.actor} ({trip.trigger}): {trip.reason}"
        return None

    # -- equity marks (peak, day start) ---------------------------------------------------
    def equity_marks(self) -> tuple[int | None, int | None, int | None, int | None]:
        """``(peak, day, day_start, last_equity)``: what the loss triggers measure from."""
        return self._peak, self._day, self._day_start, self._last_equity

    def load_equity_marks(
        self, marks: tuple[int | None, int | None, int | None, int | None]
    ) -> None:
        """Take marks :meth:`equity_marks` gave (a snapshot after a restart)."""
        self._peak, self._day, self._day_start, self._last_equity = marks

    def observe_equity(self, equity: int, ts: int) -> None:
        """Move the peak and the day's start as the checks would, never tripping.

        Recovery replays the equity of bars it re-warms through this: those bars' trips,
        if any, are already restored from the journal.
        """
        self._last_equity = equity
        if self._peak is None or equity > self._peak:
            self._peak = equity
        day = ts // NS_PER_DAY
        if self._day != day or self._day_start is None:
            self._day, self._day_start = day, equity

    # -- automatic triggers -------------------------------------------------------------
    def check_loss(self, equity: int, ts: int | None = None) -> bool:
        """Track peak equity; trip ``global`` when equity <= peak x (1 - max_loss_from_peak).

        The loss is measured from the highest equity seen, not from the starting capital.
        Non-positive equity always trips. True if this call tripped.
        """
        now = self._clock.now_ns() if ts is None else ts
        self._last_equity = equity
        if self._peak is None or equity > self._peak:
            self._peak = equity
        if KillScope.GLOBAL in self._trips:
            return False
        peak = self._peak
        limit = self.config.max_loss_from_peak
        if equity <= 0:
            reason = f"equity {self._amount(equity)} is not positive (peak {self._amount(peak)})"
        else:
            keep_num, keep_den = (1 - limit).as_integer_ratio()
            if equity * keep_den > peak * keep_num:
                return False
            reason = (
                f"equity {self._amount(equity)} is {_share(peak - equity, peak)} below its peak"
                f" {self._amount(peak)} "
                f"(limit {_share(limit)})"
            )
        flatten = self.config.flatten_on_trip
        return self._trip(
            KillScope.GLOBAL, reason, "system", KillTrigger.LOSS_FROM_PEAK.value, flatten, now
        )

    def check_daily_loss(self, equity: int, ts: int | None = None) -> bool:
        """Trip ``global`` when equity falls ``daily_loss_limit`` below the day's start.

        The day's start equity is the first equity seen in the UTC day of ``ts``. Does
        nothing when no daily limit is configured. True if this call tripped.
        """
        now = self._clock.now_ns() if ts is None else ts
        self._last_equity = equity
        day = now // NS_PER_DAY
        if self._day != day or self._day_start is None:
            self._day, self._day_start = day, equity
        limit = self.config.daily_loss_limit
        if limit is None or KillScope.GLOBAL in self._trips:
            return False
        start = self._day_start
        if equity <= 0:
            reason = (
                f"equity {self._amount(equity)} is not positive (day start {self._amount(start)})"
            )
        elif start <= 0:
            return False
        else:
            keep_num, keep_den = (1 - limit).as_integer_ratio()
            if equity * keep_den > start * keep_num:
                return False
            reason = (
                f"equity {self._amount(equity)} is {_share(start - equity, start)} below the"
                f" UTC day's start {self._amount(start)} (limit {_share(limit)})"
            )
        flatten = self.config.flatten_on_trip
        return self._trip(
            KillScope.GLOBAL, reason, "system", KillTrigger.DAILY_LOSS.value, flatten, now
        )

    # -- status and recovery ------------------------------------------------------------
    def _amount(self, units: int) -> str:
        """Money units as a decimal amount when the precision is known."""
        return format_units(units, self._money_precision)

    def snapshot(self) -> EmergencyStopSnapshot:
        """The kill switch's state for status views (deterministic order)."""
        tripped = tuple(
            TripStatus(
                scope=scope,
                ts=trip.event.ts,
                reason=trip.event.reason,
                actor=trip.event.actor,
                trigger=trip.event.trigger,
                flatten=trip.event.flatten,
                approved_by=None if trip.approval is None else trip.approval.actor,
                approval_ts=None if trip.approval is None else trip.approval.ts,
            )
            for scope, trip in sorted(self._trips.items())
        )
        limit = self.config.daily_loss_limit
        return EmergencyStopSnapshot(
            tripped=tripped,
            peak_equity=self._peak,
            day_start_equity=self._day_start,
            max_loss_from_peak=str(self.config.max_loss_from_peak),
            daily_loss_limit=None if limit is None else str(limit),
            failures=tuple(self.failures),
            anomalies=tuple(self.anomalies),
        )

    def replay(self, records: Iterable[JournalRecord | Mapping[str, Any] | Event]) -> None:
        """Apply journaled kill-switch events in order, publishing nothing, running no action.

        Accepts :class:`JournalRecord` objects, event payload dicts (with their ``type``
        tag) or events; other event types are skipped. A malformed kill-switch record
        raises :class:`RestoreFailed`: a node that cannot tell whether it was halted must
        not start.
        """
        for index, record in enumerate(records):
            where = f"record {index + 1}: "
            if isinstance(record, Event):
                if type(record) in _EVENT_TYPES.values():
                    self._apply(record, where)
                continue
            payload: Mapping[str, Any]
            if isinstance(record, JournalRecord):
                type_name, payload, where = record.type, record.payload, f"record {record.seq}: "
            else:
                type_name, payload = str(record.get("type")), record
            event_type = _EVENT_TYPES.get(type_name)
            if event_type is None:
                continue
            try:
                event = msgspec.convert({**payload, "type": type_name}, event_type)
            except msgspec.ValidationError as exc:
                raise RestoreFailed(f"journal {where}malformed {type_name}: {exc}") from None
            self._apply(event, where)

    @classmethod
    def restore(
        cls,
        records: Iterable[JournalRecord | Mapping[str, Any] | Event],
        *,
        clock: Clock,
        publish: Callable[[Event], object],
        config: KillSwitchSection | None = None,
        on_trip: Sequence[ScopeAction] = (),
        on_flatten: Sequence[ScopeAction] = (),
    ) -> EmergencyStop:
        """An EmergencyStop in the state the journal ``records`` leave it in.

        A node that went down halted comes back halted, with any approvals it had; no
        event is published and no action runs (reconciliation deals with the venue).
        Peak and day-start equity start afresh from the next equity check.
        """
        stop = cls(clock, publish, config=config, on_trip=on_trip, on_flatten=on_flatten)
        stop.replay(records)
        return stop


def _share(part: int | Decimal, whole: int | None = None) -> str:
    """``part / whole`` (or ``part`` itself) as a percentage with two decimals."""
    ratio = Decimal(part) if whole is None else Decimal(part) / Decimal(whole)
    return f"{ratio * 100:.2f}%"
