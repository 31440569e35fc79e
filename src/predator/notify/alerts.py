"""Alerts: what the operator must hear about, and the channels that tell them.

The :class:`AlertDispatcher` throttles floods per kind, folds repeats of the same alert,
fans out to channels (console, webhook, in-memory) and keeps an acknowledgeable history.
A failing channel is recorded, never raised into the trading code that raised the alert.
"""

from __future__ import annotations

import http.client
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum, StrEnum
from typing import Protocol, TextIO, overload
from urllib.parse import urlsplit

import msgspec

from predator.core.clock import NS_PER_SECOND, Clock, iso_utc
from predator.core.events import Event
from predator.core.ids import IdGenerator

__all__ = [
    "Alert",
    "AlertAcknowledged",
    "AlertChannel",
    "AlertDeliveryFailed",
    "AlertDispatcher",
    "AlertRaised",
    "AlertRecord",
    "ConsoleChannel",
    "DispatchResult",
    "DispatchStatus",
    "MemoryChannel",
    "Severity",
    "UnknownAlert",
    "WebhookChannel",
]

_MINUTE_NS = 60 * NS_PER_SECOND


class Severity(IntEnum):
    """How urgent an alert is; ordered so ``severity >= Severity.ERROR`` reads naturally."""

    INFO = 10
    WARNING = 20
    ERROR = 30
    CRITICAL = 40

    @property
    def label(self) -> str:
        """Lower-case name (``"critical"``), as console lines and webhooks show it."""
        return self.name.lower()


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One thing the operator should know about.

    ``kind`` is the type of alert (``"kill_switch"``, ``"breaker_opened"``) and drives
    throttling; ``key`` identifies "the same alert again" for deduplication and defaults
    to ``"<kind>:<title>"``. ``id`` is issued by the dispatcher when left empty.
    """

    ts: int
    severity: Severity
    kind: str
    title: str
    message: str = ""
    source: str = ""
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    key: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("an alert needs a kind (e.g. 'kill_switch')")
        if not self.key:
            msgspec.structs.force_setattr(self, "key", f"{self.kind}:{self.title}")


class DispatchStatus(StrEnum):
    """What the dispatcher did with one alert."""

    SENT = "sent"
    """Handed to every channel that wanted it; at least one took it (or none wanted it)."""
    FAILED = "failed"
    """Every channel that wanted it failed; a repeat is tried again, not deduplicated."""
    THROTTLED = "throttled"
    """Its kind already had ``throttle_per_minute`` alerts in the last minute."""
    DEDUPLICATED = "deduplicated"
    """The same key was sent within the dedup window; counted on the original."""


class DispatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :meth:`AlertDispatcher.dispatch`.

    ``failed`` maps channel name to the error; ``skipped`` lists channels whose minimum
    severity is above the alert's; ``duplicate_of`` is the id of the alert it repeats.
    """

    status: DispatchStatus
    alert: Alert
    sent: tuple[str, ...] = ()
    failed: dict[str, str] = msgspec.field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    duplicate_of: str | None = None

    @property
    def delivered(self) -> bool:
        """True when at least one channel took the alert."""
        return bool(self.sent)


class AlertRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An accepted alert in the dispatcher's history, with its delivery and ack state."""

    alert: Alert
    status: DispatchStatus
    sent: tuple[str, ...] = ()
    failed: dict[str, str] = msgspec.field(default_factory=dict)
    repeats: int = 0
    """Repeats suppressed by deduplication since it was sent."""
    last_repeat_ts: int | None = None
    acknowledged_by: str | None = None
    acknowledged_ts: int | None = None

    @property
    def acknowledged(self) -> bool:
        """True once an operator acknowledged it."""
        return self.acknowledged_by is not None


class AlertRaised(Event, frozen=True, kw_only=True):
    """An alert passed throttling and dedup and was handed to the channels."""

    alert: Alert
    status: DispatchStatus
    sent: tuple[str, ...] = ()
    failed: dict[str, str] = msgspec.field(default_factory=dict)


class AlertAcknowledged(Event, frozen=True, kw_only=True):
    """An operator (``actor``) acknowledged the alert ``alert_id``."""

    alert_id: str
    actor: str


class AlertDeliveryFailed(RuntimeError):
    """A channel gave up on an alert; ``reason`` is the last error it saw."""

    def __init__(self, channel: str, attempts: int, reason: str) -> None:
        plural = "attempt" if attempts == 1 else "attempts"
        super().__init__(f"{channel}: alert not delivered after {attempts} {plural}: {reason}")
        self.channel = channel
        self.attempts = attempts
        self.reason = reason


class UnknownAlert(LookupError):
    """No alert with this id is in the dispatcher's history."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert {alert_id!r} in the alert history")
        self.alert_id = alert_id


class AlertChannel(Protocol):
    """Somewhere alerts go. ``send`` returns once delivered and raises when it cannot.

    The dispatcher skips a channel for alerts below its ``min_severity``.
    """

    @property
    def name(self) -> str:
        """Unique name of the channel (in dispatch results and events)."""
        ...

    @property
    def min_severity(self) -> Severity:
        """Alerts below this severity are not sent to the channel."""
        ...

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise."""
        ...


# -- channels ---------------------------------------------------------------------------

_PLAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+@,")


def _kv(value: str) -> str:
    """``value`` bare when safe, else JSON-quoted, so a line always parses back."""
    if value and all(c in _PLAIN_CHARS for c in value):
        return value
    return msgspec.json.encode(value).decode("utf-8")


class ConsoleChannel:
    """Writes one structured key=value line per alert to ``stream`` (stderr by default).

    ``ts=2023-03-01T00:00:00.000000000Z severity=critical kind=kill_switch id=A-000001
    source=risk title="Engine halted" message="..." engine=trend`` (one line; the
    alert's fields follow in key order).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        min_severity: Severity = Severity.INFO,
        *,
        name: str = "console",
    ) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._min_severity = Severity(min_severity)
        self._name = name

    @property
    def name(self) -> str:
        """The channel name (``"console"``)."""
        return self._name

    @property
    def min_severity(self) -> Severity:
        """Alerts below this severity are not written."""
        return self._min_severity

    @staticmethod
    def format(alert: Alert) -> str:
        """The line written for ``alert`` (without the newline)."""
        parts = [
            f"ts={iso_utc(alert.ts)}",
            f"severity={alert.severity.label}",
            f"kind={_kv(alert.kind)}",
            f"id={_kv(alert.id)}",
            f"source={_kv(alert.source)}",
            f"title={_kv(alert.title)}",
            f"message={_kv(alert.message)}",
        ]
        parts.extend(f"{_kv(key)}={_kv(alert.fields[key])}" for key in sorted(alert.fields))
        return " ".join(parts)

    def send(self, alert: Alert) -> None:
        """Write ``alert``'s line, unless it is below ``min_severity``."""
        if alert.severity < self._min_severity:
            return
        self._stream.write(self.format(alert) + "\n")
        self._stream.flush()


class MemoryChannel:
    """Keeps alerts in a list: the in-process channel for tests and the dashboard."""

    def __init__(self, name: str = "memory", min_severity: Severity = Severity.INFO) -> None:
        self._name = name
        self._min_severity = Severity(min_severity)
        self.alerts: list[Alert] = []

    @property
    def name(self) -> str:
        """The channel name (``"memory"``)."""
        return self._name

    @property
    def min_severity(self) -> Severity:
        """Alerts below this severity are not kept."""
        return self._min_severity

    def send(self, alert: Alert) -> None:
        """Append ``alert`` unless it is below ``min_severity``."""
        if alert.severity >= self._min_severity:
            self.alerts.append(alert)


def _json_payload(alert: Alert) -> bytes:
    payload = msgspec.to_builtins(alert)
    payload["severity"] = alert.severity.label
    payload["severity_level"] = int(alert.severity)
    payload["time"] = iso_utc(alert.ts)
    return msgspec.json.encode(payload)


class WebhookChannel:
    """POSTs each alert as JSON to ``url``, retrying with exponential backoff.

    Connection errors, timeouts, HTTP 5xx and 429 are retried ``retries`` times after
    waiting ``backoff_s``, ``2 * backoff_s``, ``4 * backoff_s``...; other non-2xx answers
    fail at once. After the last attempt :class:`AlertDeliveryFailed` is raised. The
    payload is the alert's fields with ``severity`` as its label (``"critical"``),
    ``severity_level`` and ``time`` (ISO UTC); pass ``encode`` for another format.
    Error messages show only scheme, host and port: webhook paths often hold a secret.

    This is a live-runtime edge (it blocks while waiting); ``sleep`` is injectable so
    tests check the backoff without waiting.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], object] = time.sleep,
        name: str = "webhook",
        min_severity: Severity = Severity.INFO,
        headers: Mapping[str, str] | None = None,
        encode: Callable[[Alert], bytes] = _json_payload,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook url must be http:// or https:// with a host")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        if backoff_s < 0:
            raise ValueError(f"backoff_s must be 0 or more, got {backoff_s}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        port = f":{parts.port}" if parts.port is not None else ""
        self._display = f"{parts.scheme}://{parts.hostname}{port}"
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._name = name
        self._min_severity = Severity(min_severity)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._encode = encode

    @property
    def name(self) -> str:
        """The channel name (``"webhook"``)."""
        return self._name

    @property
    def min_severity(self) -> Severity:
        """Alerts below this severity are not posted."""
        return self._min_severity

    def backoff_delays(self) -> list[float]:
        """The waits before each retry: ``backoff_s * 2**n`` for n = 0 .. retries - 1."""
        return [self._backoff_s * 2**n for n in range(self._retries)]

    def send(self, alert: Alert) -> None:
        """POST ``alert``; raise :class:`AlertDeliveryFailed` when every attempt failed."""
        body = self._encode(alert)
        delays = self.backoff_delays()
        reason = ""
        for attempt in range(1, self._retries + 2):
            if attempt > 1:
                self._sleep(delays[attempt - 2])
            try:
                status, status_reason = self._post(body)
            except (OSError, http.client.HTTPException) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if 200 <= status < 300:
                return
            reason = f"HTTP {status} {status_reason}".rstrip()
            if status < 500 and status != 429:
                # The receiver rejected the request itself: sending it again won't help.
                raise AlertDeliveryFailed(self._describe(), attempt, reason)
        raise AlertDeliveryFailed(self._describe(), self._retries + 1, reason)

    def _post(self, body: bytes) -> tuple[int, str]:
        connection_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_type(self._host, self._port, timeout=self._timeout_s)
        try:
            connection.request("POST", self._target, body=body, headers=self._headers)
            response = connection.getresponse()
            response.read()
            return response.status, response.reason
        finally:
            connection.close()

    def _describe(self) -> str:
        return f"{self._name} {self._display}"

    def __repr__(self) -> str:
        return f"WebhookChannel({self._display!r}, name={self._name!r})"


# -- dispatcher -------------------------------------------------------------------------


class AlertDispatcher:
    """Throttles, deduplicates, fans out and remembers alerts.

    - *Dedup*: an alert whose ``key`` was **delivered** less than ``dedup_window_ns`` ago
      is not sent again; the original's ``repeats`` counts it. A failed alert is not a
      reason to suppress its repeat. ``dedup_window_ns=0`` disables dedup.
    - *Throttling*: at most ``throttle_per_minute`` alerts of one ``kind`` are sent per
      rolling minute; alerts at or above ``never_throttle`` (CRITICAL by default, so a
      halt is never lost in a flood) are exempt. ``None`` disables either.
    - Accepted alerts get an id (``A-000001``), go to every channel, are published as
      :class:`AlertRaised` and kept in a history of ``history_size`` entries.

    Time comes only from ``clock``. Channel errors are recorded in the result, the
    history and the event; :meth:`dispatch` never raises them.

    >>> from predator.core.clock import TimeWarp
    >>> dispatcher = AlertDispatcher(TimeWarp.virtual(), [MemoryChannel()])
    >>> dispatcher.dispatch(severity=Severity.ERROR, kind="breaker", title="opened").status
    <DispatchStatus.SENT: 'sent'>
    """

    def __init__(
        self,
        clock: Clock,
        channels: Sequence[AlertChannel] = (),
        *,
        throttle_per_minute: int | None = 10,
        dedup_window_ns: int = 60 * NS_PER_SECOND,
        publish: Callable[[Event], object] | None = None,
        history_size: int = 1000,
        never_throttle: Severity | None = Severity.CRITICAL,
        ids: IdGenerator | None = None,
    ) -> None:
        names = [channel.name for channel in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"alert channel names must be unique, got {names}")
        if throttle_per_minute is not None and throttle_per_minute < 1:
            raise ValueError(f"throttle_per_minute must be at least 1, got {throttle_per_minute}")
        if dedup_window_ns < 0:
            raise ValueError(f"dedup_window_ns must be 0 or more, got {dedup_window_ns}")
        if history_size < 1:
            raise ValueError(f"history_size must be at least 1, got {history_size}")
        self._clock = clock
        self._channels = tuple(channels)
        self._throttle = throttle_per_minute
        self._dedup_window_ns = dedup_window_ns
        self._publish = publish
        self._history_size = history_size
        self._never_throttle = never_throttle
        self._ids = IdGenerator("A") if ids is None else ids
        self._history: OrderedDict[str, AlertRecord] = OrderedDict()
        self._sent_by_kind: dict[str, deque[int]] = {}
        self._delivered_keys: dict[str, tuple[int, str]] = {}
        self._counts = dict.fromkeys(DispatchStatus, 0)

    @property
    def channels(self) -> tuple[AlertChannel, ...]:
        """The channels, in the order alerts are sent to them."""
        return self._channels

    @property
    def counts(self) -> dict[DispatchStatus, int]:
        """How many dispatches ended in each status so far."""
        return dict(self._counts)

    # -- dispatching --------------------------------------------------------------------
    @overload
    def dispatch(self, alert: Alert, /) -> DispatchResult: ...

    @overload
    def dispatch(
        self,
        /,
        *,
        severity: Severity,
        kind: str,
        title: str,
        message: str = "",
        source: str = "",
        fields: Mapping[str, object] | None = None,
        key: str | None = None,
    ) -> DispatchResult: ...

    def dispatch(
        self,
        alert: Alert | None = None,
        /,
        *,
        severity: Severity | None = None,
        kind: str | None = None,
        title: str | None = None,
        message: str = "",
        source: str = "",
        fields: Mapping[str, object] | None = None,
        key: str | None = None,
    ) -> DispatchResult:
        """Send ``alert`` (or one built from the keyword fields, stamped now).

        Field values are turned into strings. Returns what happened; never raises a
        channel's error.
        """
        now = self._clock.now_ns()
        if alert is None:
            if severity is None or kind is None or title is None:
                raise TypeError("dispatch() needs an Alert or severity=, kind= and title=")
            alert = Alert(
                ts=now,
                severity=Severity(severity),
                kind=kind,
                title=title,
                message=message,
                source=source,
                fields={str(k): str(v) for k, v in (fields or {}).items()},
                key=key or "",
            )
        elif severity is not None or kind is not None or title is not None:
            raise TypeError("dispatch() takes an Alert or keyword fields, not both")

        duplicate = self._duplicate_of(alert.key, now)
        if duplicate is not None:
            return self._suppress_duplicate(alert, duplicate, now)
        if self._throttled(alert, now):
            self._counts[DispatchStatus.THROTTLED] += 1
            return DispatchResult(status=DispatchStatus.THROTTLED, alert=alert)
        return self._deliver(alert, now)

    def _duplicate_of(self, key: str, now: int) -> str | None:
        seen = self._delivered_keys.get(key)
        if seen is None:
            return None
        if now - seen[0] < self._dedup_window_ns:
            return seen[1]
        del self._delivered_keys[key]
        return None

    def _suppress_duplicate(self, alert: Alert, original_id: str, now: int) -> DispatchResult:
        self._counts[DispatchStatus.DEDUPLICATED] += 1
        record = self._history.get(original_id)
        if record is not None:
            self._history[original_id] = msgspec.structs.replace(
                record, repeats=record.repeats + 1, last_repeat_ts=now
            )
        return DispatchResult(
            status=DispatchStatus.DEDUPLICATED, alert=alert, duplicate_of=original_id
        )

    def _throttled(self, alert: Alert, now: int) -> bool:
        limit = self._throttle
        if limit is None:
            return False
        if self._never_throttle is not None and alert.severity >= self._never_throttle:
            return False
        times = self._sent_by_kind.get(alert.kind)
        if times is None:
            return False
        while times and times[0] <= now - _MINUTE_NS:
            times.popleft()
        return len(times) >= limit

    def _deliver(self, alert: Alert, now: int) -> DispatchResult:
        if not alert.id:
            alert = msgspec.structs.replace(alert, id=self._ids.next_id())
        elif alert.id in self._history:
            raise ValueError(f"alert id {alert.id!r} was already dispatched")
        sent: list[str] = []
        skipped: list[str] = []
        failed: dict[str, str] = {}
        for channel in self._channels:
            if alert.severity < channel.min_severity:
                skipped.append(channel.name)
                continue
            try:
                channel.send(alert)
            except Exception as exc:  # a broken channel must never stop trading
                failed[channel.name] = str(exc) or type(exc).__name__
            else:
                sent.append(channel.name)
        status = DispatchStatus.FAILED if failed and not sent else DispatchStatus.SENT
        self._counts[status] += 1
        self._sent_by_kind.setdefault(alert.kind, deque()).append(now)
        if status is DispatchStatus.SENT and self._dedup_window_ns:
            self._delivered_keys[alert.key] = (now, alert.id)
            if len(self._delivered_keys) > self._history_size:
                self._forget_expired_keys(now)
        self._remember(AlertRecord(alert=alert, status=status, sent=tuple(sent), failed=failed))
        if self._publish is not None:
            self._publish(
                AlertRaised(ts=now, alert=alert, status=status, sent=tuple(sent), failed=failed)
            )
        return DispatchResult(
            status=status, alert=alert, sent=tuple(sent), failed=failed, skipped=tuple(skipped)
        )

    def _forget_expired_keys(self, now: int) -> None:
        window = self._dedup_window_ns
        expired = [k for k, (ts, _) in self._delivered_keys.items() if now - ts >= window]
        for key in expired:
            del self._delivered_keys[key]

    def _remember(self, record: AlertRecord) -> None:
        self._history[record.alert.id] = record
        while len(self._history) > self._history_size:
            self._history.popitem(last=False)

    # -- history and acknowledgement ----------------------------------------------------
    def acknowledge(self, alert_id: str, actor: str) -> AlertRecord:
        """Mark ``alert_id`` acknowledged by ``actor`` and publish :class:`AlertAcknowledged`.

        Acknowledging twice keeps the first actor and time. Raises :class:`UnknownAlert`
        for an id not (or no longer) in the history.
        """
        if not actor:
            raise ValueError("an acknowledgement needs an actor")
        record = self._history.get(alert_id)
        if record is None:
            raise UnknownAlert(alert_id)
        if record.acknowledged:
            return record
        now = self._clock.now_ns()
        record = msgspec.structs.replace(record, acknowledged_by=actor, acknowledged_ts=now)
        self._history[alert_id] = record
        if self._publish is not None:
            self._publish(AlertAcknowledged(ts=now, alert_id=alert_id, actor=actor))
        return record

    def get(self, alert_id: str) -> AlertRecord | None:
        """The history record of ``alert_id``, if it is still kept."""
        return self._history.get(alert_id)

    def unacknowledged(self, min_severity: Severity = Severity.INFO) -> list[AlertRecord]:
        """Accepted alerts at or above ``min_severity`` nobody acknowledged, oldest first."""
        return [
            record
            for record in self._history.values()
            if not record.acknowledged and record.alert.severity >= min_severity
        ]

    def history(self) -> list[AlertRecord]:
        """The last ``history_size`` accepted alerts (sent or failed), oldest first."""
        return list(self._history.values())
