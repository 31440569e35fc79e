"""The risk layer's configuration: one validated, immutable object loaded from TOML.

``load_risk_config("risk.toml")`` returns a :class:`RiskConfig`; every key has a default
documented beside its field (and in ``docs/risk.example.toml``). A mistake gives one
:class:`ConfigError` line naming the file, the dotted key and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Self, TypeVar

import msgspec

from predator.core.clock import NS_PER_SECOND

__all__ = [
    "AlertsSection",
    "BreakerSection",
    "ConfigError",
    "HeartbeatSection",
    "KillSwitchSection",
    "LimitsSection",
    "LowProfitSection",
    "MaxDrawdownSection",
    "ProtectionsSection",
    "RiskConfig",
    "SizingSection",
    "StoplossGuardSection",
    "load_risk_config",
]

_CODE_SOURCE = "<code>"
"""The source named when a config object is built directly in Python."""


class ConfigError(ValueError):
    """A risk configuration is unreadable or invalid; the message is one line.

    ``source`` names the file (or ``<dict>``/``<code>``), ``key`` the dotted key
    (``limits.price_band``; ``None`` for a file-level problem), ``line`` the TOML line of
    a syntax error. ``expected``/``got`` are set for a value out of range or of the
    wrong type.

    >>> str(ConfigError("risk.toml", "limits.price_band", 'expected a fraction, got "x"'))
    'risk.toml: limits.price_band: expected a fraction, got "x"'
    """

    def __init__(
        self,
        source: str,
        key: str | None,
        problem: str,
        *,
        line: int | None = None,
        expected: str | None = None,
        got: object = None,
    ) -> None:
        where = source if line is None else f"{source}:{line}"
        message = f"{where}: {problem}" if key is None else f"{where}: {key}: {problem}"
        super().__init__(" ".join(message.split()))  # one line, whatever the parts hold
        self.source = source
        self.key = key
        self.problem = problem
        self.line = line
        self.expected = expected
        self.got = got

    @classmethod
    def invalid(cls, source: str, key: str, expected: str, got: object) -> ConfigError:
        """The error for a value of the wrong type or out of its allowed range."""
        return cls(
            source, key, f"expected {expected}, got {_show(got)}", expected=expected, got=got
        )

    def with_source(self, source: str) -> ConfigError:
        """The same error, attributed to ``source`` (a file name)."""
        return ConfigError(
            source,
            self.key,
            self.problem,
            line=self.line,
            expected=self.expected,
            got=self.got,
        )


def _show(value: object) -> str:
    """``value`` as it would be written in TOML, shortened for a one-line message."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, Decimal):
        text = f'"{value}"'
    elif isinstance(value, Mapping):
        return "a table"
    elif isinstance(value, list | tuple):
        return "an array"
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- value rules ------------------------------------------------------------------------
class _Invalid(Exception):
    """A value broke its rule; ``expected`` says what the rule allows."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


class _Rule:
    """How one key is read from TOML and which values it allows (attached with Annotated)."""

    expected: str

    def accept(self, raw: object) -> object:
        """The typed value for ``raw`` (a TOML value or an already typed one)."""
        raise NotImplementedError


class _Decimal(_Rule):
    """An exact decimal, written as a string (``"0.10"``) or an integer, within a range."""

    def __init__(
        self,
        noun: str,
        low: str | None = None,
        high: str | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        self.low = None if low is None else Decimal(low)
        self.high = None if high is None else Decimal(high)
        self.low_open = low_open
        self.high_open = high_open
        if low is not None and high is not None:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            self.expected = f"{noun} in {left}{low}, {high}{right}"
        elif low is not None:
            self.expected = f"{noun} {'>' if low_open else '>='} {low}"
        elif high is not None:
            self.expected = f"{noun} {'<' if high_open else '<='} {high}"
        else:
            self.expected = noun

    def accept(self, raw: object) -> Decimal:
        if isinstance(raw, float):
            # A TOML float is binary and inexact; amounts and fractions stay exact. Say
            # how to write it when quoting is all that is wrong.
            self.accept(repr(raw))
            raise _Invalid(f'{self.expected} written as a string (e.g. "{raw!r}")')
        if isinstance(raw, bool) or not isinstance(raw, Decimal | int | str):
            raise _Invalid(self.expected)
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise _Invalid(self.expected) from None
        if not value.is_finite():
            raise _Invalid(self.expected)
        low, high = self.low, self.high
        if low is not None and (value < low or (self.low_open and value == low)):
            raise _Invalid(self.expected)
        if high is not None and (value > high or (self.high_open and value == high)):
            raise _Invalid(self.expected)
        return value


class _Int(_Rule):
    """A whole number (a count or a number of seconds) at or above ``minimum``."""

    def __init__(self, noun: str, minimum: int) -> None:
        self.minimum = minimum
        self.expected = f"{noun} >= {minimum}"

    def accept(self, raw: object) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < self.minimum:
            raise _Invalid(self.expected)
        return raw


class _Bool(_Rule):
    expected = "true or false"

    def accept(self, raw: object) -> bool:
        if not isinstance(raw, bool):
            raise _Invalid(self.expected)
        return raw


class _Url(_Rule):
    expected = "an http:// or https:// URL"

    def accept(self, raw: object) -> str:
        if not isinstance(raw, str) or not re.fullmatch(r"https?://\S+", raw):
            raise _Invalid(self.expected)
        return raw


_FRACTION = _Decimal("a fraction", "0", "1", low_open=True)
"""(0, 1]: a share of equity, a price band, a failure rate."""
_PROBABILITY = _Decimal("a fraction", "0", "1")
_QUANTITY = _Decimal("a positive quantity", "0", low_open=True)
_AMOUNT = _Decimal("a positive amount in the quote currency", "0", low_open=True)
_SHARE_OF_EQUITY = _Decimal("a fraction of equity", "0", low_open=True)
"""Above 0, may exceed 1 with leverage."""
_LEVERAGE = _Decimal("a leverage", "0", low_open=True)
_GROW = _Decimal("a multiplier", "1")
_SHRINK = _Decimal("a multiplier", "0", "1", low_open=True)
_PROFIT_RATIO = _Decimal("a profit ratio", "-1")
_COUNT = _Int("an integer", 1)
_SECONDS = _Int("a whole number of seconds", 1)
_SECONDS_OR_ZERO = _Int("a whole number of seconds", 0)


# -- the struct machinery ---------------------------------------------------------------
class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A table of the config file; ``section`` is its dotted name (``protections.low_profit``)."""

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name, spec in _specs(type(self)).items():
            value = getattr(self, name)
            if isinstance(spec, _Rule) and value is not None:
                try:
                    spec.accept(value)
                except _Invalid as exc:
                    raise ConfigError.invalid(
                        _CODE_SOURCE, self._key(name), exc.expected, value
                    ) from None
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve several keys (override; raise with :meth:`_invalid`)."""

    def _key(self, name: str) -> str:
        return f"{self.section}.{name}" if self.section else name

    def _invalid(self, name: str, expected: str) -> ConfigError:
        return ConfigError.invalid(_CODE_SOURCE, self._key(name), expected, getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """Plain TOML-ready data: decimals as strings, unset optional keys left out."""
        return _drop_none(msgspec.to_builtins(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Self:
        """Validate ``data`` (parsed TOML) into this section; errors name ``source``."""
        return _build(cls, data, source)


_Spec = _Rule | type[_Section]


@functools.cache
def _specs(cls: type[_Section]) -> dict[str, _Spec]:
    """Each field's rule (from its Annotated type) or sub-section class, in field order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    specs: dict[str, _Spec] = {}
    for name in cls.__struct_fields__:
        hint = hints[name]
        rules = [a for a in getattr(hint, "__metadata__", ()) if isinstance(a, _Rule)]
        if rules:
            specs[name] = rules[0]
        elif isinstance(hint, type) and issubclass(hint, _Section):
            specs[name] = hint
        else:  # pragma: no cover - a programming error in this module
            raise TypeError(f"{cls.__name__}.{name} has neither a rule nor a section type")
    return specs


_S = TypeVar("_S", bound=_Section)


def _build(cls: type[_S], data: Mapping[str, Any], source: str) -> _S:
    specs = _specs(cls)
    prefix = f"{cls.section}." if cls.section else ""
    for key, value in data.items():
        if key not in specs:
            what = "unknown table" if isinstance(value, Mapping) else "unknown key"
            close = difflib.get_close_matches(str(key), list(specs), n=1)
            hint = (
                f"; did you mean '{prefix}{close[0]}'?"
                if close
                else f" (allowed: {', '.join(specs)})"
            )
            raise ConfigError(source, f"{prefix}{key}", what + hint)
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in data:
            continue
        raw = data[name]
        if isinstance(spec, _Rule):
            try:
                values[name] = spec.accept(raw)
            except _Invalid as exc:
                raise ConfigError.invalid(source, prefix + name, exc.expected, raw) from None
        elif isinstance(raw, Mapping):
            values[name] = _build(spec, raw, source)
        else:
            raise ConfigError.invalid(source, prefix + name, "a table", raw)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise exc.with_source(source) from None


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _drop_none(value) if isinstance(value, dict) else value
        for key, value in data.items()
        if value is not None
    }


def _ns(seconds: int) -> int:
    return seconds * NS_PER_SECOND


# -- the sections -----------------------------------------------------------------------
class LimitsSection(_Section, frozen=True, kw_only=True):
    """``[limits]``: pre-trade limits the RiskEngine applies to every order intent."""

    section: ClassVar[str] = "limits"

    max_order_quantity: Annotated[Decimal | None, _QUANTITY] = None
    """Largest quantity of one order, in instrument units. Unset (default): no limit."""
    max_order_notional: Annotated[Decimal | None, _AMOUNT] = None
    """Largest notional (quantity x price) of one order. Unset (default): no limit."""
    max_position_quantity: Annotated[Decimal | None, _QUANTITY] = None
    """Largest absolute position per instrument, in units. Unset (default): no limit."""
    max_engine_position_quantity: Annotated[Decimal | None, _QUANTITY] = None
    """Largest absolute position one engine holds per instrument. Unset (default): no limit."""
    max_total_exposure: Annotated[Decimal, _SHARE_OF_EQUITY] = Decimal("1.0")
    """Gross notional of all positions plus open and unknown orders, as a fraction of
    equity. Default ``"1.0"``."""
    max_leverage: Annotated[Decimal, _LEVERAGE] = Decimal("1.0")
    """Largest gross position notional over equity. Default ``"1.0"`` (no leverage)."""
    price_band: Annotated[Decimal, _FRACTION] = Decimal("0.10")
    """Limit prices further than this fraction from the last mid (or close) are refused.
    Default ``"0.10"``."""
    max_orders_per_minute_strategy: Annotated[int, _COUNT] = 30
    """Order intents one strategy may send per rolling minute. Default 30."""
    max_orders_per_minute_engine: Annotated[int, _COUNT] = 60
    """Order intents one engine (all its strategies) may send per rolling minute. Default 60."""
    stale_data_seconds: Annotated[int, _SECONDS] = 180
    """No new exposure on an instrument whose last market data is older. Default 180."""

    @property
    def stale_data_ns(self) -> int:
        """:attr:`stale_data_seconds` in kernel nanoseconds."""
        return _ns(self.stale_data_seconds)

    def _check_together(self) -> None:
        if self.max_orders_per_minute_strategy > self.max_orders_per_minute_engine:
            raise self._invalid(
                "max_orders_per_minute_strategy",
                f"an integer <= limits.max_orders_per_minute_engine "
                f"({self.max_orders_per_minute_engine})",
            )


class BreakerSection(_Section, frozen=True, kw_only=True):
    """``[breaker]``: when a CircuitBreaker opens, how long it rests, how it closes again."""

    section: ClassVar[str] = "breaker"

    consecutive_failures: Annotated[int, _COUNT] = 5
    """Failures in a row that open the breaker. Default 5."""
    failure_rate: Annotated[Decimal, _FRACTION] = Decimal("0.5")
    """Share of failed calls within the window that opens the breaker. Default ``"0.5"``."""
    window_seconds: Annotated[int, _SECONDS] = 300
    """The rolling window the failure rate is measured over. Default 300."""
    min_calls: Annotated[int, _COUNT] = 10
    """Calls the window must hold before the failure rate counts. Default 10."""
    consecutive_losses: Annotated[int, _COUNT] = 3
    """Losing trades in a row that open a strategy's breaker. Default 3."""
    max_cumulative_loss: Annotated[Decimal | None, _AMOUNT] = None
    """Cumulative realized loss that opens the breaker. Unset (default): no limit."""
    cooldown_seconds: Annotated[int, _SECONDS] = 60
    """How long an open breaker stays open before it lets trial calls through
    (half-open). Default 60."""
    half_open_successes: Annotated[int, _COUNT] = 2
    """Successful trial calls that close a half-open breaker. Default 2."""

    @property
    def window_ns(self) -> int:
        """:attr:`window_seconds` in kernel nanoseconds."""
        return _ns(self.window_seconds)

    @property
    def cooldown_ns(self) -> int:
        """:attr:`cooldown_seconds` in kernel nanoseconds."""
        return _ns(self.cooldown_seconds)


class KillSwitchSection(_Section, frozen=True, kw_only=True):
    """``[kill_switch]``: the automatic triggers of the EmergencyStop."""

    section: ClassVar[str] = "kill_switch"

    max_loss_from_peak: Annotated[Decimal, _FRACTION] = Decimal("0.20")
    """Trip globally when equity falls this fraction below its peak (not below the
    starting capital). Default ``"0.20"``."""
    daily_loss_limit: Annotated[Decimal | None, _FRACTION] = None
    """Trip globally when equity falls this fraction below its value at the start of the
    UTC day. Unset (default): no daily limit."""
    flatten_on_trip: Annotated[bool, _Bool()] = False
    """Close every position (not only cancel orders) on an automatic trip. Default false."""


class HeartbeatSection(_Section, frozen=True, kw_only=True):
    """``[heartbeat]``: how often components prove they live and when silence halts."""

    section: ClassVar[str] = "heartbeat"

    interval_seconds: Annotated[int, _SECONDS] = 5
    """Seconds between heartbeats. Default 5."""
    timeout_seconds: Annotated[int, _SECONDS] = 15
    """Silence after which the component counts as lost (fail closed). Default 15; must
    exceed ``interval_seconds``."""

    @property
    def interval_ns(self) -> int:
        """:attr:`interval_seconds` in kernel nanoseconds."""
        return _ns(self.interval_seconds)

    @property
    def timeout_ns(self) -> int:
        """:attr:`timeout_seconds` in kernel nanoseconds."""
        return _ns(self.timeout_seconds)

    def _check_together(self) -> None:
        if self.timeout_seconds <= self.interval_seconds:
            raise self._invalid(
                "timeout_seconds",
                f"a whole number of seconds > heartbeat.interval_seconds ({self.interval_seconds})",
            )


class SizingSection(_Section, frozen=True, kw_only=True):
    """``[sizing]``: the PositionSizeManager's caps and its win-rate based scaling."""

    section: ClassVar[str] = "sizing"

    max_position_fraction: Annotated[Decimal, _FRACTION] = Decimal("0.20")
    """Largest share of equity one position may take. Default ``"0.20"``."""
    max_total_exposure_fraction: Annotated[Decimal, _FRACTION] = Decimal("0.50")
    """Largest share of equity all positions together may take. Default ``"0.50"``."""
    win_rate_high: Annotated[Decimal, _PROBABILITY] = Decimal("0.60")
    """At or above this win rate, sizes scale by ``multiplier_high``. Default ``"0.60"``."""
    multiplier_high: Annotated[Decimal, _GROW] = Decimal("1.5")
    """Size multiplier for a strategy winning often (still capped). Default ``"1.5"``."""
    win_rate_low: Annotated[Decimal, _PROBABILITY] = Decimal("0.40")
    """At or below this win rate, sizes scale by ``multiplier_low``. Default ``"0.40"``."""
    multiplier_low: Annotated[Decimal, _SHRINK] = Decimal("0.5")
    """Size multiplier for a strategy losing often. Default ``"0.5"``."""

    def _check_together(self) -> None:
        if self.max_position_fraction > self.max_total_exposure_fraction:
            raise self._invalid(
                "max_position_fraction",
                f"a fraction <= sizing.max_total_exposure_fraction "
                f'("{self.max_total_exposure_fraction}")',
            )
        if self.win_rate_low >= self.win_rate_high:
            raise self._invalid(
                "win_rate_low", f'a fraction < sizing.win_rate_high ("{self.win_rate_high}")'
            )


class MaxDrawdownSection(_Section, frozen=True, kw_only=True):
    """``[protections.max_drawdown]``: stop trading after a drawdown within a lookback."""

    section: ClassVar[str] = "protections.max_drawdown"

    max_allowed_drawdown: Annotated[Decimal, _FRACTION] = Decimal("0.15")
    """Drawdown (fraction of the lookback's peak equity) that stops trading.
    Default ``"0.15"``."""
    lookback_seconds: Annotated[int, _SECONDS] = 86_400
    """Window the drawdown is measured over. Default 86400 (one day)."""
    stop_seconds: Annotated[int, _SECONDS] = 3_600
    """How long trading stays stopped. Default 3600."""

    @property
    def lookback_ns(self) -> int:
        """:attr:`lookback_seconds` in kernel nanoseconds."""
        return _ns(self.lookback_seconds)

    @property
    def stop_ns(self) -> int:
        """:attr:`stop_seconds` in kernel nanoseconds."""
        return _ns(self.stop_seconds)


class StoplossGuardSection(_Section, frozen=True, kw_only=True):
    """``[protections.stoploss_guard]``: stop after too many stop-losses in a lookback."""

    section: ClassVar[str] = "protections.stoploss_guard"

    trade_limit: Annotated[int, _COUNT] = 4
    """Stop-loss exits within the lookback that stop trading. Default 4."""
    lookback_seconds: Annotated[int, _SECONDS] = 3_600
    """Window the stop-losses are counted over. Default 3600."""
    stop_seconds: Annotated[int, _SECONDS] = 1_800
    """How long trading stays stopped. Default 1800."""

    @property
    def lookback_ns(self) -> int:
        """:attr:`lookback_seconds` in kernel nanoseconds."""
        return _ns(self.lookback_seconds)

    @property
    def stop_ns(self) -> int:
        """:attr:`stop_seconds` in kernel nanoseconds."""
        return _ns(self.stop_seconds)


class LowProfitSection(_Section, frozen=True, kw_only=True):
    """``[protections.low_profit]``: stop a strategy whose recent trades earn too little."""

    section: ClassVar[str] = "protections.low_profit"

    trade_limit: Annotated[int, _COUNT] = 4
    """Closed trades the lookback must hold before the check applies. Default 4."""
    lookback_seconds: Annotated[int, _SECONDS] = 21_600
    """Window the profit is summed over. Default 21600 (six hours)."""
    required_profit: Annotated[Decimal, _PROFIT_RATIO] = Decimal("0")
    """Profit ratio the lookback's trades must beat, or trading stops. Default ``"0"``."""
    stop_seconds: Annotated[int, _SECONDS] = 3_600
    """How long trading stays stopped. Default 3600."""

    @property
    def lookback_ns(self) -> int:
        """:attr:`lookback_seconds` in kernel nanoseconds."""
        return _ns(self.lookback_seconds)

    @property
    def stop_ns(self) -> int:
        """:attr:`stop_seconds` in kernel nanoseconds."""
        return _ns(self.stop_seconds)


class ProtectionsSection(_Section, frozen=True, kw_only=True):
    """``[protections]``: temporary trading stops after bad outcomes (they lift by time)."""

    section: ClassVar[str] = "protections"

    cooldown_seconds: Annotated[int, _SECONDS_OR_ZERO] = 300
    """Pause on an instrument after a position on it closes; 0 disables. Default 300."""
    max_drawdown: MaxDrawdownSection = msgspec.field(default_factory=MaxDrawdownSection)
    """See :class:`MaxDrawdownSection`."""
    stoploss_guard: StoplossGuardSection = msgspec.field(default_factory=StoplossGuardSection)
    """See :class:`StoplossGuardSection`."""
    low_profit: LowProfitSection = msgspec.field(default_factory=LowProfitSection)
    """See :class:`LowProfitSection`."""

    @property
    def cooldown_ns(self) -> int:
        """:attr:`cooldown_seconds` in kernel nanoseconds."""
        return _ns(self.cooldown_seconds)


class AlertsSection(_Section, frozen=True, kw_only=True):
    """``[alerts]``: how many risk alerts go out and where."""

    section: ClassVar[str] = "alerts"

    throttle_per_minute: Annotated[int, _COUNT] = 10
    """Alerts sent per rolling minute at most; the rest are counted and summarised.
    Default 10."""
    dedup_seconds: Annotated[int, _SECONDS_OR_ZERO] = 60
    """An identical alert within this many seconds is suppressed; 0 disables. Default 60."""
    webhook_url: Annotated[str | None, _Url()] = None
    """Where alerts are POSTed. Unset (default): console only."""

    @property
    def dedup_ns(self) -> int:
        """:attr:`dedup_seconds` in kernel nanoseconds."""
        return _ns(self.dedup_seconds)


class RiskConfig(_Section, frozen=True, kw_only=True):
    """The whole risk configuration; ``RiskConfig()`` holds every default.

    >>> RiskConfig.from_dict({"limits": {"price_band": "0.05"}}).limits.price_band
    Decimal('0.05')
    """

    limits: LimitsSection = msgspec.field(default_factory=LimitsSection)
    breaker: BreakerSection = msgspec.field(default_factory=BreakerSection)
    kill_switch: KillSwitchSection = msgspec.field(default_factory=KillSwitchSection)
    heartbeat: HeartbeatSection = msgspec.field(default_factory=HeartbeatSection)
    sizing: SizingSection = msgspec.field(default_factory=SizingSection)
    protections: ProtectionsSection = msgspec.field(default_factory=ProtectionsSection)
    alerts: AlertsSection = msgspec.field(default_factory=AlertsSection)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def load_risk_config(path: str | os.PathLike[str]) -> RiskConfig:
    """Read and validate a risk TOML file; any problem raises a one-line ConfigError.

    Missing tables and keys take their defaults.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(source, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(source, None, "not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        if found is None:
            raise ConfigError(source, None, f"invalid TOML: {message}") from None
        detail = message[: found.start()]
        line = int(found.group(1))
        raise ConfigError(
            source, None, f"invalid TOML at column {found.group(2)}: {detail}", line=line
        ) from None
    return RiskConfig.from_dict(data, source=source)
