"""Specs for structured logging stamped with the kernel clock."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from decimal import Decimal

import msgspec
import pytest

from predator.core.clock import NS_PER_SECOND, TimeWarp
from predator.core.events import Event
from predator.core.log import configure_logging, get_logger

MARCH_1_2023 = 1_677_628_800 * NS_PER_SECOND


class OrderFilled(Event, frozen=True, kw_only=True):
    order_id: str


@pytest.fixture
def root_state() -> Iterator[None]:
    """Restore the root logger after a test reconfigures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def capture(json: bool = False) -> io.StringIO:
    stream = io.StringIO()
    configure_logging("debug", stream, json=json)
    return stream


@pytest.mark.usefixtures("root_state")
def test_key_value_line_carries_simulated_time_level_logger_and_fields() -> None:
    stream = capture()
    clock = TimeWarp.virtual(start_ns=MARCH_1_2023)
    log = get_logger("venue", clock)
    log.info("order_filled", order_id="O-000001", price=Decimal("180.36"), quantity=3)
    assert stream.getvalue() == (
        "ts=2023-03-01T00:00:00.000000000Z level=info logger=venue event=order_filled "
        "order_id=O-000001 price=180.36 quantity=3\n"
    )


@pytest.mark.usefixtures("root_state")
def test_each_line_is_stamped_with_the_time_of_the_call() -> None:
    stream = capture()
    clock = TimeWarp.virtual(start_ns=MARCH_1_2023)
    log = get_logger("risk", clock)
    log.warning("breaker_opened")
    clock.advance(1_500_000_001)
    log.error("trading_halted", reason="drawdown")
    first, second = stream.getvalue().splitlines()
    assert first.startswith("ts=2023-03-01T00:00:00.000000000Z level=warning")
    assert second.startswith("ts=2023-03-01T00:00:01.500000001Z level=error")
    assert second.endswith("reason=drawdown")


@pytest.mark.usefixtures("root_state")
def test_values_with_spaces_or_quotes_are_quoted_and_stay_on_one_line() -> None:
    stream = capture()
    log = get_logger("notify", TimeWarp.virtual())
    log.info("alert", text='say "hi"\nnow', empty="", flag=True, missing=None)
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert 'text="say \\"hi\\"\\nnow"' in line
    assert 'empty=""' in line
    assert "flag=true" in line
    assert "missing=null" in line


@pytest.mark.usefixtures("root_state")
def test_bound_fields_come_first_on_every_line() -> None:
    stream = capture()
    log = get_logger("strategy", TimeWarp.virtual()).bind(strategy="sma_cross", engine="trend")
    log.info("signal", side="buy")
    assert stream.getvalue().rstrip().endswith("strategy=sma_cross engine=trend side=buy")


@pytest.mark.usefixtures("root_state")
def test_json_mode_writes_one_object_per_line_in_field_order() -> None:
    stream = capture(json=True)
    log = get_logger("venue", TimeWarp.virtual(start_ns=MARCH_1_2023))
    fill = OrderFilled(ts=MARCH_1_2023, order_id="O-000001")
    log.info("order_filled", price=Decimal("180.36"), fill=fill, other=object)
    record = msgspec.json.decode(stream.getvalue().strip())
    assert list(record)[:5] == ["ts", "level", "logger", "event", "price"]
    assert record["ts"] == "2023-03-01T00:00:00.000000000Z"
    assert record["level"] == "info"
    assert record["price"] == "180.36"
    assert record["fill"] == {"type": "OrderFilled", "ts": MARCH_1_2023, "order_id": "O-000001"}
    assert record["other"] == str(object)


@pytest.mark.usefixtures("root_state")
def test_disabled_levels_never_read_the_clock() -> None:
    class CountingClock:
        reads = 0

        def now_ns(self) -> int:
            self.reads += 1
            return 0

    stream = io.StringIO()
    configure_logging("warning", stream)
    clock = CountingClock()
    log = get_logger("venue", clock)
    log.debug("noise")
    log.info("noise")
    assert clock.reads == 0
    assert stream.getvalue() == ""
    log.warning("signal")
    assert clock.reads == 1


@pytest.mark.usefixtures("root_state")
def test_exception_is_logged_on_the_same_line() -> None:
    stream = capture()
    log = get_logger("strategy", TimeWarp.virtual())
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        log.exception("strategy_crashed", strategy="faulty")
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert "level=error" in line
    assert "exc=" in line
    assert "ZeroDivisionError: boom" in line


def test_binding_a_reserved_field_name_is_refused() -> None:
    log = get_logger("venue", TimeWarp.virtual())
    with pytest.raises(TypeError, match="reserved"):
        log.bind(level="high")


@pytest.mark.usefixtures("root_state")
def test_a_reserved_field_name_in_a_log_call_is_renamed_not_fatal() -> None:
    stream = capture()
    log = get_logger("venue", TimeWarp.virtual())
    log.info("order_filled", ts=5, event="dup")
    assert stream.getvalue().rstrip().endswith("event=order_filled ts_=5 event_=dup")


@pytest.mark.usefixtures("root_state")
def test_configuring_twice_replaces_the_handler_instead_of_doubling_lines() -> None:
    first = io.StringIO()
    configure_logging("info", first)
    second = io.StringIO()
    configure_logging("info", second)
    get_logger("venue", TimeWarp.virtual()).info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("event=once") == 1


@pytest.mark.usefixtures("root_state")
def test_plain_stdlib_records_use_the_configured_clock() -> None:
    stream = io.StringIO()
    configure_logging(logging.INFO, stream, clock=TimeWarp.virtual(start_ns=MARCH_1_2023))
    logging.getLogger("thirdparty").info("connected to %s", "venue")
    assert stream.getvalue() == (
        "ts=2023-03-01T00:00:00.000000000Z level=info logger=thirdparty "
        'event="connected to venue"\n'
    )


def test_unknown_level_name_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        configure_logging("loud", io.StringIO())
