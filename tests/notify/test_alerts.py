"""Alerts end to end: dispatcher on a virtual clock, channels, and a real webhook server.

Webhook tests POST to a real ``ThreadingHTTPServer`` on 127.0.0.1 that answers with a
scripted list of status codes; backoff is checked through an injected sleep that records
the delays instead of waiting.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest

from predator.core.bus import MessageBus
from predator.core.clock import NS_PER_SECOND, TimeWarp
from predator.core.events import Event
from predator.notify import (
    Alert,
    AlertAcknowledged,
    AlertDeliveryFailed,
    AlertDispatcher,
    AlertRaised,
    ConsoleChannel,
    DispatchStatus,
    MemoryChannel,
    Severity,
    UnknownAlert,
    WebhookChannel,
)

START_NS = 1_677_628_800_000_000_000  # 2023-03-01T00:00:00Z
SECOND = NS_PER_SECOND


# -- a real webhook receiver -----------------------------------------------------------


class WebhookServer(ThreadingHTTPServer):
    """Records every POST and answers with ``script`` status codes, then ``default``."""

    def __init__(self, script: list[int], default: int = 200, delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.default = default
        self.delay_s = delay_s
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/hooks/secret-token?channel=ops"

    def next_status(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else self.default


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers.items()), body))
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        status = self.server.next_status()
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


@pytest.fixture
def serve() -> Iterator[type[WebhookServer]]:
    """``serve(script, default=200)`` starts a receiver; all are stopped after the test."""
    servers: list[WebhookServer] = []

    class _Started(WebhookServer):
        def __init__(self, script: list[int], default: int = 200, delay_s: float = 0.0) -> None:
            super().__init__(script, default, delay_s)
            servers.append(self)
            threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()

    yield _Started
    for server in servers:
        server.shutdown()
        server.server_close()


class RecordingSleep:
    """Stands in for ``time.sleep``: remembers the delays, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class BrokenChannel:
    """A channel whose ``send`` always raises, as a buggy integration would."""

    name = "broken"
    min_severity = Severity.INFO

    def __init__(self) -> None:
        self.calls = 0

    def send(self, alert: Alert) -> None:
        self.calls += 1
        raise RuntimeError("telegram api unreachable")


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def halt_alert(**changes: object) -> Alert:
    alert = Alert(
        ts=START_NS,
        severity=Severity.CRITICAL,
        kind="kill_switch",
        title="Engine trend halted",
        message="drawdown 12% over limit 10%",
        source="risk",
        fields={"engine": "trend", "drawdown": "0.12"},
    )
    return msgspec.structs.replace(alert, **changes)


# -- the alert itself ------------------------------------------------------------------


def test_severity_is_ordered_from_info_to_critical() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.ERROR < Severity.CRITICAL
    assert Severity.CRITICAL.label == "critical"


def test_alert_key_defaults_to_kind_and_title() -> None:
    assert halt_alert().key == "kill_switch:Engine trend halted"
    assert halt_alert(key="halt:trend").key == "halt:trend"


def test_alert_without_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        Alert(ts=0, severity=Severity.INFO, kind="", title="x")


# -- webhook channel against a real HTTP server ----------------------------------------


def test_webhook_posts_the_alert_as_json(serve: type[WebhookServer]) -> None:
    server = serve([])
    channel = WebhookChannel(server.url, timeout_s=2.0, sleep=RecordingSleep())
    clock = TimeWarp.virtual(START_NS)
    dispatcher = AlertDispatcher(clock, [channel])

    result = dispatcher.dispatch(halt_alert())

    assert result.status is DispatchStatus.SENT
    assert result.sent == ("webhook",)
    [(path, headers, body)] = server.requests
    assert path == "/hooks/secret-token?channel=ops"
    assert headers["Content-Type"] == "application/json"
    payload = msgspec.json.decode(body)
    assert payload == {
        "ts": START_NS,
        "time": "2023-03-01T00:00:00.000000000Z",
        "severity": "critical",
        "severity_level": 40,
        "kind": "kill_switch",
        "title": "Engine trend halted",
        "message": "drawdown 12% over limit 10%",
        "source": "risk",
        "fields": {"engine": "trend", "drawdown": "0.12"},
        "key": "kill_switch:Engine trend halted",
        "id": "A-000001",
    }


def test_webhook_retries_server_errors_with_exponential_backoff(
    serve: type[WebhookServer],
) -> None:
    server = serve([500, 500, 200])
    sleep = RecordingSleep()
    channel = WebhookChannel(server.url, timeout_s=2.0, retries=3, backoff_s=0.5, sleep=sleep)
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [channel])

    result = dispatcher.dispatch(halt_alert())

    assert result.status is DispatchStatus.SENT
    assert len(server.requests) == 3
    assert sleep.delays == [0.5, 1.0]
    assert {body for _, _, body in server.requests} == {server.requests[0][2]}


def test_webhook_that_always_fails_is_recorded_not_raised(serve: type[WebhookServer]) -> None:
    server = serve([], default=503)
    sleep = RecordingSleep()
    channel = WebhookChannel(server.url, timeout_s=2.0, retries=3, backoff_s=0.25, sleep=sleep)
    bus = MessageBus()
    raised: list[AlertRaised] = []
    bus.subscribe(AlertRaised, raised.append)
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [channel], publish=bus.publish)

    result = dispatcher.dispatch(halt_alert())

    assert result.status is DispatchStatus.FAILED
    assert not result.delivered
    assert len(server.requests) == 4
    assert sleep.delays == [0.25, 0.5, 1.0]
    error = result.failed["webhook"]
    assert "after 4 attempts" in error
    assert "HTTP 503" in error
    assert "secret-token" not in error  # the url path may hold a credential
    assert dispatcher.history()[0].failed == result.failed
    assert raised[0].status is DispatchStatus.FAILED
    assert raised[0].failed == result.failed


def test_webhook_send_raises_a_clear_error_after_the_last_retry(
    serve: type[WebhookServer],
) -> None:
    server = serve([], default=500)
    channel = WebhookChannel(server.url, timeout_s=2.0, retries=1, sleep=RecordingSleep())

    with pytest.raises(AlertDeliveryFailed) as caught:
        channel.send(halt_alert(id="A-000009"))

    assert caught.value.attempts == 2
    assert caught.value.reason.startswith("HTTP 500")
    assert str(caught.value).startswith("webhook http://127.0.0.1:")


def test_webhook_does_not_retry_a_client_error(serve: type[WebhookServer]) -> None:
    server = serve([], default=400)
    sleep = RecordingSleep()
    channel = WebhookChannel(server.url, timeout_s=2.0, sleep=sleep)

    with pytest.raises(AlertDeliveryFailed, match="after 1 attempt: HTTP 400"):
        channel.send(halt_alert())

    assert len(server.requests) == 1
    assert sleep.delays == []


def test_webhook_connection_refused_is_recorded_as_failure() -> None:
    sleep = RecordingSleep()
    channel = WebhookChannel(
        f"http://127.0.0.1:{closed_port()}/hook", timeout_s=2.0, retries=2, sleep=sleep
    )
    memory = MemoryChannel()
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [channel, memory])

    result = dispatcher.dispatch(halt_alert())

    # The memory channel still got it: one dead channel does not silence the others.
    assert result.status is DispatchStatus.SENT
    assert result.sent == ("memory",)
    assert "ConnectionRefusedError" in result.failed["webhook"]
    assert "after 3 attempts" in result.failed["webhook"]
    assert sleep.delays == [0.5, 1.0]


def test_webhook_timeout_is_a_connection_failure(serve: type[WebhookServer]) -> None:
    server = serve([], delay_s=1.0)
    channel = WebhookChannel(server.url, timeout_s=0.1, retries=0, sleep=RecordingSleep())
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [channel])

    result = dispatcher.dispatch(halt_alert())

    assert result.status is DispatchStatus.FAILED
    assert "timed out" in result.failed["webhook"]


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("ftp://example.com/hook", {}),
        ("http:///nohost", {}),
        ("http://example.com", {"retries": -1}),
        ("http://example.com", {"timeout_s": 0}),
        ("http://example.com", {"backoff_s": -1}),
    ],
)
def test_webhook_rejects_bad_configuration(url: str, options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        WebhookChannel(url, **options)  # type: ignore[arg-type]


# -- dispatcher: throttling and dedup on a virtual clock -------------------------------


def test_throttle_allows_n_alerts_per_kind_per_rolling_minute() -> None:
    clock = TimeWarp.virtual(START_NS)
    memory = MemoryChannel()
    dispatcher = AlertDispatcher(clock, [memory], throttle_per_minute=3)

    def raise_at(second: int, title: str, kind: str = "breaker") -> DispatchStatus:
        clock.set(START_NS + second * SECOND)
        return dispatcher.dispatch(severity=Severity.ERROR, kind=kind, title=title).status

    assert raise_at(0, "a") is DispatchStatus.SENT
    assert raise_at(30, "b") is DispatchStatus.SENT
    assert raise_at(40, "c") is DispatchStatus.SENT
    assert raise_at(50, "d") is DispatchStatus.THROTTLED
    assert raise_at(50, "other kind", kind="stale_data") is DispatchStatus.SENT
    assert raise_at(60, "e") is DispatchStatus.SENT  # the alert of second 0 left the window
    assert raise_at(61, "f") is DispatchStatus.THROTTLED
    assert raise_at(90, "g") is DispatchStatus.SENT
    assert [a.title for a in memory.alerts] == ["a", "b", "c", "other kind", "e", "g"]
    assert dispatcher.counts[DispatchStatus.THROTTLED] == 2


def test_critical_alerts_are_never_throttled_by_default() -> None:
    clock = TimeWarp.virtual(START_NS)
    dispatcher = AlertDispatcher(clock, [MemoryChannel()], throttle_per_minute=1)
    statuses = [
        dispatcher.dispatch(severity=Severity.CRITICAL, kind="kill_switch", title=f"{n}").status
        for n in range(5)
    ]
    assert statuses == [DispatchStatus.SENT] * 5

    strict = AlertDispatcher(clock, [], throttle_per_minute=1, never_throttle=None)
    strict.dispatch(severity=Severity.CRITICAL, kind="kill_switch", title="1")
    second = strict.dispatch(severity=Severity.CRITICAL, kind="kill_switch", title="2")
    assert second.status is DispatchStatus.THROTTLED


def test_same_alert_within_window_is_deduplicated_and_counted() -> None:
    clock = TimeWarp.virtual(START_NS)
    memory = MemoryChannel()
    dispatcher = AlertDispatcher(clock, [memory], dedup_window_ns=60 * SECOND)

    first = dispatcher.dispatch(severity=Severity.WARNING, kind="stale_data", title="AAPL")
    clock.advance(10 * SECOND)
    second = dispatcher.dispatch(severity=Severity.WARNING, kind="stale_data", title="AAPL")
    clock.advance(20 * SECOND)
    third = dispatcher.dispatch(severity=Severity.WARNING, kind="stale_data", title="AAPL")
    other = dispatcher.dispatch(severity=Severity.WARNING, kind="stale_data", title="MSFT")

    assert first.status is DispatchStatus.SENT
    assert second.status is third.status is DispatchStatus.DEDUPLICATED
    assert second.duplicate_of == third.duplicate_of == first.alert.id
    assert other.status is DispatchStatus.SENT
    record = dispatcher.get(first.alert.id)
    assert record is not None
    assert record.repeats == 2
    assert record.last_repeat_ts == START_NS + 30 * SECOND
    assert [a.title for a in memory.alerts] == ["AAPL", "MSFT"]

    clock.set(START_NS + 60 * SECOND)  # window measured from the delivered original
    again = dispatcher.dispatch(severity=Severity.WARNING, kind="stale_data", title="AAPL")
    assert again.status is DispatchStatus.SENT
    assert again.alert.id != first.alert.id


def test_explicit_key_groups_alerts_with_different_titles() -> None:
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [MemoryChannel()])
    dispatcher.dispatch(severity=Severity.ERROR, kind="drawdown", title="9.1%", key="dd:trend")
    repeat = dispatcher.dispatch(
        severity=Severity.ERROR, kind="drawdown", title="9.4%", key="dd:trend"
    )
    assert repeat.status is DispatchStatus.DEDUPLICATED


def test_failed_alert_is_not_deduplicated_so_its_repeat_is_tried_again() -> None:
    broken = BrokenChannel()
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [broken])

    first = dispatcher.dispatch(halt_alert())
    second = dispatcher.dispatch(halt_alert())

    assert first.status is second.status is DispatchStatus.FAILED
    assert first.failed == {"broken": "telegram api unreachable"}
    assert broken.calls == 2
    assert dispatcher.counts[DispatchStatus.FAILED] == 2


def test_dispatch_by_fields_stamps_clock_time_and_stringifies_fields() -> None:
    clock = TimeWarp.virtual(START_NS + 123)
    memory = MemoryChannel()
    dispatcher = AlertDispatcher(clock, [memory])

    result = dispatcher.dispatch(
        severity=Severity.WARNING,
        kind="order_rate",
        title="sma_cross throttled",
        source="risk",
        fields={"orders": 42, "limit": 40},
    )

    assert result.alert.ts == START_NS + 123
    assert result.alert.fields == {"orders": "42", "limit": "40"}
    assert memory.alerts == [result.alert]


def test_dispatch_rejects_an_alert_and_fields_together() -> None:
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS))
    with pytest.raises(TypeError):
        dispatcher.dispatch(halt_alert(), severity=Severity.INFO)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        dispatcher.dispatch()  # type: ignore[call-overload]


def test_channel_below_its_min_severity_is_skipped() -> None:
    pager = MemoryChannel("pager", min_severity=Severity.ERROR)
    log = MemoryChannel("log")
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [pager, log])

    result = dispatcher.dispatch(severity=Severity.WARNING, kind="gap", title="missing bars")

    assert result.sent == ("log",)
    assert result.skipped == ("pager",)
    assert pager.alerts == []


def test_alert_raised_is_published_journaled_and_serialisable() -> None:
    bus = MessageBus()
    seen: list[Event] = []
    bus.subscribe(Event, seen.append)
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [MemoryChannel()], publish=bus.publish)

    dispatcher.dispatch(halt_alert())
    dispatcher.dispatch(halt_alert())  # deduplicated: not raised again

    [event] = seen
    assert isinstance(event, AlertRaised)
    assert AlertRaised.journaled
    assert event.ts == START_NS
    assert event.sent == ("memory",)
    decoded = msgspec.json.decode(msgspec.json.encode(event), type=AlertRaised)
    assert decoded == event


def test_duplicate_channel_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        AlertDispatcher(TimeWarp.virtual(), [MemoryChannel(), MemoryChannel()])


# -- history and acknowledgement --------------------------------------------------------


def test_acknowledge_removes_an_alert_from_the_unacknowledged_list() -> None:
    clock = TimeWarp.virtual(START_NS)
    bus = MessageBus()
    acks: list[AlertAcknowledged] = []
    bus.subscribe(AlertAcknowledged, acks.append)
    dispatcher = AlertDispatcher(clock, [], publish=bus.publish)
    info = dispatcher.dispatch(severity=Severity.INFO, kind="report", title="daily")
    halt = dispatcher.dispatch(halt_alert())

    assert [r.alert.id for r in dispatcher.unacknowledged()] == [info.alert.id, halt.alert.id]
    assert [r.alert.id for r in dispatcher.unacknowledged(Severity.ERROR)] == [halt.alert.id]

    clock.advance(5 * SECOND)
    record = dispatcher.acknowledge(halt.alert.id, actor="operator:alice")
    clock.advance(5 * SECOND)
    again = dispatcher.acknowledge(halt.alert.id, actor="operator:bob")

    assert record.acknowledged_by == again.acknowledged_by == "operator:alice"
    assert record.acknowledged_ts == START_NS + 5 * SECOND
    assert dispatcher.unacknowledged(Severity.ERROR) == []
    assert acks == [
        AlertAcknowledged(ts=START_NS + 5 * SECOND, alert_id=halt.alert.id, actor="operator:alice")
    ]


def test_acknowledging_an_unknown_alert_raises() -> None:
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS))
    with pytest.raises(UnknownAlert, match="A-999999"):
        dispatcher.acknowledge("A-999999", actor="operator")
    dispatcher.dispatch(halt_alert())
    with pytest.raises(ValueError, match="actor"):
        dispatcher.acknowledge("A-000001", actor="")


def test_history_keeps_the_last_history_size_alerts() -> None:
    clock = TimeWarp.virtual(START_NS)
    dispatcher = AlertDispatcher(clock, [], history_size=3, throttle_per_minute=None)
    for n in range(5):
        dispatcher.dispatch(severity=Severity.INFO, kind="tick", title=str(n))

    assert [r.alert.title for r in dispatcher.history()] == ["2", "3", "4"]
    assert [r.alert.id for r in dispatcher.history()] == ["A-000003", "A-000004", "A-000005"]


# -- console channel ----------------------------------------------------------------------


def test_console_writes_one_key_value_line_per_alert() -> None:
    stream = io.StringIO()
    dispatcher = AlertDispatcher(TimeWarp.virtual(START_NS), [ConsoleChannel(stream)])

    dispatcher.dispatch(halt_alert())
    dispatcher.dispatch(severity=Severity.INFO, kind="report", title="daily")

    assert stream.getvalue().splitlines() == [
        "ts=2023-03-01T00:00:00.000000000Z severity=critical kind=kill_switch id=A-000001 "
        'source=risk title="Engine trend halted" message="drawdown 12% over limit 10%" '
        "drawdown=0.12 engine=trend",
        'ts=2023-03-01T00:00:00.000000000Z severity=info kind=report id=A-000002 source="" '
        'title=daily message=""',
    ]


def test_console_escapes_newlines_to_stay_on_one_line() -> None:
    line = ConsoleChannel.format(halt_alert(message="line one\nline two", id="A-1"))
    assert "\n" not in line
    assert 'message="line one\\nline two"' in line


def test_console_ignores_alerts_below_its_min_severity() -> None:
    stream = io.StringIO()
    console = ConsoleChannel(stream, min_severity=Severity.ERROR)
    console.send(halt_alert(severity=Severity.WARNING))
    assert stream.getvalue() == ""
    console.send(halt_alert())
    assert stream.getvalue().count("\n") == 1
