"""Structured logging on top of stdlib ``logging``, stamped with the kernel clock.

Every line carries the simulated time, level, logger and event name, then the fields:
``ts=2023-03-01T00:00:00.000000000Z level=info logger=venue event=order_filled qty=3``,
or one JSON object per line. The only state is stdlib logging's own registry.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import msgspec

from predator.core.clock import NS_PER_SECOND, Clock, iso_utc

__all__ = [
    "JsonFormatter",
    "KeyValueFormatter",
    "StructuredLogger",
    "configure_logging",
    "get_logger",
]

_TS_ATTR = "predator_ts"
_FIELDS_ATTR = "predator_fields"
_RESERVED = frozenset({"ts", "level", "logger", "event", "exc"})


class StructuredLogger:
    """Logs ``event`` names with key=value fields, stamped with ``clock`` time.

    Records only cost a clock read and a dict when their level is enabled.

    >>> from predator.core.clock import TimeWarp
    >>> log = get_logger("venue", TimeWarp.virtual()).bind(venue="paper")
    >>> log.info("order_filled", order_id="O-000001", price="180.36")
    """

    __slots__ = ("_clock", "_context", "_logger")

    def __init__(
        self, logger: logging.Logger, clock: Clock, context: Mapping[str, Any] | None = None
    ) -> None:
        self._logger = logger
        self._clock = clock
        self._context: dict[str, Any] = dict(context or {})
        _check_names(self._context)

    @property
    def name(self) -> str:
        """The stdlib logger name (the ``logger=`` field)."""
        return self._logger.name

    @property
    def logger(self) -> logging.Logger:
        """The underlying stdlib logger (for levels, handlers and filters)."""
        return self._logger

    def bind(self, **fields: Any) -> StructuredLogger:
        """A logger adding ``fields`` to every line (after those already bound).

        Reserved names (``ts``, ``level``, ``logger``, ``event``, ``exc``) raise
        ``TypeError`` here; in a single log call they are renamed ``ts_`` and so on.
        """
        return StructuredLogger(self._logger, self._clock, {**self._context, **fields})

    def is_enabled_for(self, level: int) -> bool:
        """True when a record at ``level`` would be emitted."""
        return self._logger.isEnabledFor(level)

    def log(self, level: int, event: str, /, **fields: Any) -> None:
        """Log ``event`` at ``level`` with ``fields``."""
        if self._logger.isEnabledFor(level):
            self._emit(level, event, fields, exc_info=False)

    def debug(self, event: str, /, **fields: Any) -> None:
        """Log ``event`` at DEBUG level."""
        if self._logger.isEnabledFor(logging.DEBUG):
            self._emit(logging.DEBUG, event, fields, exc_info=False)

    def info(self, event: str, /, **fields: Any) -> None:
        """Log ``event`` at INFO level."""
        if self._logger.isEnabledFor(logging.INFO):
            self._emit(logging.INFO, event, fields, exc_info=False)

    def warning(self, event: str, /, **fields: Any) -> None:
        """Log ``event`` at WARNING level."""
        if self._logger.isEnabledFor(logging.WARNING):
            self._emit(logging.WARNING, event, fields, exc_info=False)

    def error(self, event: str, /, **fields: Any) -> None:
        """Log ``event`` at ERROR level."""
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, event, fields, exc_info=False)

    def critical(self, event: str, /, **fields: Any) -> None:
        """Log ``event`` at CRITICAL level."""
        if self._logger.isEnabledFor(logging.CRITICAL):
            self._emit(logging.CRITICAL, event, fields, exc_info=False)

    def exception(self, event: str, /, **fields: Any) -> None:
        """Log ``event`` at ERROR level with the exception being handled (``exc=``)."""
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, event, fields, exc_info=True)

    def _emit(self, level: int, event: str, fields: dict[str, Any], *, exc_info: bool) -> None:
        if fields:
            if not _RESERVED.isdisjoint(fields):
                # A log call must never crash its caller: keep the value, rename the key.
                fields = {(f"{k}_" if k in _RESERVED else k): v for k, v in fields.items()}
            merged = {**self._context, **fields} if self._context else fields
        else:
            merged = self._context
        extra = {_TS_ATTR: self._clock.now_ns(), _FIELDS_ATTR: merged}
        self._logger.log(level, event, exc_info=exc_info, extra=extra, stacklevel=3)

    def __repr__(self) -> str:
        return f"<StructuredLogger {self._logger.name} context={self._context!r}>"


def _check_names(fields: Mapping[str, Any]) -> None:
    clash = _RESERVED.intersection(fields)
    if clash:
        raise TypeError(f"log field names {sorted(clash)} are reserved; rename them")


def get_logger(name: str, clock: Clock) -> StructuredLogger:
    """A structured logger called ``name`` whose lines carry ``clock``'s time."""
    return StructuredLogger(logging.getLogger(name), clock)


class _BaseFormatter(logging.Formatter):
    """Shared part: the record's simulated time, level name and fields."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self._clock = clock
        # (second, "YYYY-MM-DDTHH:MM:SS") in one tuple, so a live-mode handler shared
        # by threads never sees a second paired with another second's prefix.
        self._last: tuple[int, str] = (-1, "")

    def record_ts(self, record: logging.LogRecord) -> int:
        """Kernel time of ``record``; records from plain stdlib loggers use the
        formatter's clock if it has one, else the record's own creation time."""
        ts: int | None = getattr(record, _TS_ATTR, None)
        if ts is not None:
            return ts
        if self._clock is not None:
            return self._clock.now_ns()
        return int(record.created * NS_PER_SECOND)

    def iso(self, ts_ns: int) -> str:
        """``iso_utc(ts_ns)``, formatting the date part once per second of log time."""
        second, nanos = divmod(ts_ns, NS_PER_SECOND)
        last_second, prefix = self._last
        if second != last_second:
            prefix = iso_utc(second * NS_PER_SECOND)[:-11]
            self._last = (second, prefix)
        return f"{prefix}.{nanos:09d}Z"

    @staticmethod
    def record_fields(record: logging.LogRecord) -> Mapping[str, Any]:
        """The structured fields of ``record`` (none for plain stdlib records)."""
        fields: Mapping[str, Any] = getattr(record, _FIELDS_ATTR, {})
        return fields

    def exc_text(self, record: logging.LogRecord) -> str | None:
        """The formatted exception (and stack) of ``record``, if any."""
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts) if parts else None


class KeyValueFormatter(_BaseFormatter):
    """``ts=... level=info logger=venue event=order_filled key=value ...`` lines.

    Values with spaces, quotes, ``=`` or control characters are double-quoted with
    JSON escapes, so every record stays on one line and parses back unambiguously.
    """

    def format(self, record: logging.LogRecord) -> str:
        """One key=value line for ``record``."""
        parts = [
            f"ts={self.iso(self.record_ts(record))}",
            f"level={record.levelname.lower()}",
            f"logger={_kv_value(record.name)}",
            f"event={_kv_value(record.getMessage())}",
        ]
        parts.extend(
            f"{key}={_kv_value(value)}" for key, value in self.record_fields(record).items()
        )
        exc = self.exc_text(record)
        if exc is not None:
            parts.append(f"exc={_kv_value(exc)}")
        return " ".join(parts)


class JsonFormatter(_BaseFormatter):
    """One JSON object per line, keys in the same order as the key=value form."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        # Types msgspec cannot encode (custom classes) fall back to their str().
        self._encoder = msgspec.json.Encoder(enc_hook=str)

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line for ``record``."""
        line: dict[str, Any] = {
            "ts": self.iso(self.record_ts(record)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(self.record_fields(record))
        exc = self.exc_text(record)
        if exc is not None:
            line["exc"] = exc
        return self._encoder.encode(line).decode("utf-8")


_PLAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+@,")


def _kv_value(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    text = value if isinstance(value, str) else str(value)
    if text and all(c in _PLAIN_CHARS for c in text):
        return text
    return msgspec.json.encode(text).decode("utf-8")


class _PredatorHandler(logging.StreamHandler[TextIO]):
    """Marks the handler :func:`configure_logging` installed, so calling it again
    replaces it instead of doubling every line."""


def configure_logging(
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    json: bool = False,
    *,
    clock: Clock | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as key=value or JSON lines.

    Configures the root logger: sets ``level`` (``"info"``, ``logging.DEBUG``, ...) and
    replaces a handler installed by an earlier call; other handlers stay. ``clock``
    stamps records from plain stdlib loggers (third-party libraries); without it they
    carry their wall-clock creation time. Returns the installed handler.
    """
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(f"unknown log level {level!r}")
        level = numeric
    handler = _PredatorHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter(clock) if json else KeyValueFormatter(clock))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PredatorHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
