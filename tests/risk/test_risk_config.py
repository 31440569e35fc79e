"""Specs for RiskConfig: one validated object from TOML, every mistake one clear line."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from predator.core.clock import NS_PER_SECOND
from predator.risk.config import (
    BreakerSection,
    ConfigError,
    HeartbeatSection,
    LimitsSection,
    RiskConfig,
    load_risk_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "risk.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "risk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        RiskConfig.from_dict(data, source="risk.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def every_key(section: msgspec.Struct, prefix: str = "") -> set[str]:
    """Every dotted key of a config tree, set or not."""
    keys: set[str] = set()
    for name in section.__struct_fields__:
        value = getattr(section, name)
        if isinstance(value, msgspec.Struct):
            keys |= every_key(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


# -- defaults -------------------------------------------------------------------------------
def test_defaults_are_the_documented_ones() -> None:
    config = RiskConfig()
    assert config.limits.max_order_quantity is None
    assert config.limits.max_total_exposure == Decimal("1.0")
    assert config.limits.price_band == Decimal("0.10")
    assert config.limits.max_orders_per_minute_strategy == 30
    assert config.limits.max_orders_per_minute_engine == 60
    assert config.limits.stale_data_ns == 180 * NS_PER_SECOND
    assert config.breaker.consecutive_failures == 5
    assert config.breaker.failure_rate == Decimal("0.5")
    assert config.breaker.window_ns == 300 * NS_PER_SECOND
    assert config.breaker.cooldown_ns == 60 * NS_PER_SECOND
    assert config.kill_switch.max_loss_from_peak == Decimal("0.20")
    assert config.kill_switch.daily_loss_limit is None
    assert config.kill_switch.flatten_on_trip is False
    assert config.heartbeat.interval_ns == 5 * NS_PER_SECOND
    assert config.heartbeat.timeout_ns == 15 * NS_PER_SECOND
    assert config.sizing.max_position_fraction == Decimal("0.20")
    assert config.sizing.multiplier_high == Decimal("1.5")
    assert config.protections.max_drawdown.max_allowed_drawdown == Decimal("0.15")
    assert config.protections.max_drawdown.lookback_ns == 86_400 * NS_PER_SECOND
    assert config.protections.stoploss_guard.stop_ns == 1_800 * NS_PER_SECOND
    assert config.protections.cooldown_ns == 300 * NS_PER_SECOND
    assert config.protections.low_profit.required_profit == Decimal("0")
    assert config.protections.low_profit.lookback_ns == 21_600 * NS_PER_SECOND
    assert config.alerts.throttle_per_minute == 10
    assert config.alerts.dedup_ns == 60 * NS_PER_SECOND
    assert config.alerts.webhook_url is None


def test_example_file_loads_to_exactly_the_defaults() -> None:
    assert load_risk_config(EXAMPLE) == RiskConfig()


def test_example_file_names_every_key_including_the_unset_ones() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    tables: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[([\w.]+)\]", line.strip())
        if header:
            current = header.group(1)
            continue
        entry = re.match(r"#?\s*(\w+)\s*=", line)
        if entry and current:
            tables[f"{current}.{entry.group(1)}"] = line
    config_keys = every_key(RiskConfig())
    assert config_keys <= set(tables), sorted(config_keys - set(tables))
    # Every entry is preceded by a comment explaining it.
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"\w+\s*=", line):
            assert lines[index - 1].startswith("#"), line


def test_commented_out_example_values_are_valid_when_uncommented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^# (\w+ = .*)$", r"\1", text)
    config = RiskConfig.from_dict(tomllib.loads(uncommented))
    assert config.limits.max_order_quantity == Decimal("10")
    assert config.kill_switch.daily_loss_limit == Decimal("0.05")
    assert config.alerts.webhook_url == "https://hooks.example.com/predator"


# -- loading --------------------------------------------------------------------------------
def test_file_values_override_defaults_and_the_rest_stay_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[limits]
price_band = "0.05"
max_order_notional = 25000
max_order_quantity = "0.5"

[kill_switch]
daily_loss_limit = "0.03"
flatten_on_trip = true

[protections.low_profit]
required_profit = "-0.01"
""",
    )
    config = load_risk_config(path)
    assert config.limits.price_band == Decimal("0.05")
    assert config.limits.max_order_notional == Decimal(25000)
    assert config.limits.max_order_quantity == Decimal("0.5")
    assert config.kill_switch.daily_loss_limit == Decimal("0.03")
    assert config.kill_switch.flatten_on_trip is True
    assert config.protections.low_profit.required_profit == Decimal("-0.01")
    assert config.breaker == BreakerSection()
    assert config.protections.max_drawdown == RiskConfig().protections.max_drawdown


def test_to_dict_round_trips_through_toml_shape() -> None:
    config = RiskConfig.from_dict(
        {"limits": {"max_order_quantity": "2.5"}, "alerts": {"webhook_url": "https://x.io/h"}}
    )
    data = config.to_dict()
    assert data["limits"]["max_order_quantity"] == "2.5"
    assert "max_order_notional" not in data["limits"]  # unset optional keys are left out
    assert RiskConfig.from_dict(data) == config
    # Plain builtins only: encodable as JSON for the dashboard.
    assert msgspec.json.decode(msgspec.json.encode(data)) == data


def test_config_is_immutable() -> None:
    config = RiskConfig()
    with pytest.raises(AttributeError):
        config.limits.price_band = Decimal("0.5")  # type: ignore[misc]


# -- errors ---------------------------------------------------------------------------------
def test_out_of_range_fraction_names_file_key_range_and_value() -> None:
    assert (
        error_of({"limits": {"price_band": "1.5"}})
        == 'risk.toml: limits.price_band: expected a fraction in (0, 1], got "1.5"'
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"limits": {"price_band": "0"}},
            'limits.price_band: expected a fraction in (0, 1], got "0"',
        ),
        ({"limits": {"price_band": "abc"}}, "limits.price_band: expected a fraction in (0, 1]"),
        ({"limits": {"price_band": "NaN"}}, "limits.price_band: expected a fraction in (0, 1]"),
        ({"limits": {"max_order_notional": "-5"}}, "expected a positive amount in the quote"),
        ({"limits": {"max_orders_per_minute_engine": 0}}, "expected an integer >= 1, got 0"),
        ({"limits": {"stale_data_seconds": "180"}}, 'seconds >= 1, got "180"'),
        ({"breaker": {"window_seconds": True}}, "breaker.window_seconds: expected a whole"),
        ({"breaker": {"failure_rate": "1.01"}}, "breaker.failure_rate: expected a fraction"),
        ({"kill_switch": {"flatten_on_trip": "yes"}}, 'expected true or false, got "yes"'),
        ({"kill_switch": {"daily_loss_limit": "2"}}, "kill_switch.daily_loss_limit: expected"),
        ({"heartbeat": {"interval_seconds": 2.5}}, "heartbeat.interval_seconds: expected a whole"),
        ({"sizing": {"multiplier_high": "0.9"}}, 'expected a multiplier >= 1, got "0.9"'),
        ({"sizing": {"multiplier_low": "0"}}, "expected a multiplier in (0, 1]"),
        (
            {"protections": {"low_profit": {"required_profit": "-2"}}},
            'protections.low_profit.required_profit: expected a profit ratio >= -1, got "-2"',
        ),
        ({"protections": {"cooldown_seconds": -1}}, "protections.cooldown_seconds: expected"),
        ({"alerts": {"webhook_url": "ftp://x"}}, "alerts.webhook_url: expected an http://"),
        ({"limits": 5}, "risk.toml: limits: expected a table, got 5"),
        ({"protections": {"max_drawdown": "0.1"}}, "protections.max_drawdown: expected a table"),
    ],
)
def test_invalid_values_give_one_line_naming_the_dotted_key(
    data: dict[str, Any], expected: str
) -> None:
    message = error_of(data)
    assert message.startswith("risk.toml: ")
    assert expected in message


def test_a_float_where_a_decimal_string_is_wanted_says_to_quote_it() -> None:
    message = error_of({"limits": {"price_band": 0.05}})
    assert message == (
        "risk.toml: limits.price_band: expected a fraction in (0, 1] written as a string "
        '(e.g. "0.05"), got 0.05'
    )
    # Out of range as well: the range is what matters, not the quoting.
    assert error_of({"limits": {"price_band": 1.5}}).endswith("(0, 1], got 1.5")


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    assert (
        error_of({"limits": {"price_bnd": "0.1"}})
        == "risk.toml: limits.price_bnd: unknown key; did you mean 'limits.price_band'?"
    )
    assert error_of({"limit": {}}) == "risk.toml: limit: unknown table; did you mean 'limits'?"
    assert error_of({"protections": {"low_profit": {"trade_limt": 3}}}).endswith(
        "did you mean 'protections.low_profit.trade_limit'?"
    )
    unrelated = error_of({"heartbeat": {"zzz": 1}})
    assert unrelated == (
        "risk.toml: heartbeat.zzz: unknown key (allowed: interval_seconds, timeout_seconds)"
    )


def test_keys_that_only_make_sense_together_are_checked_together() -> None:
    assert error_of({"heartbeat": {"interval_seconds": 20}}) == (
        "risk.toml: heartbeat.timeout_seconds: expected a whole number of seconds > "
        "heartbeat.interval_seconds (20), got 15"
    )
    assert "sizing.win_rate_low: expected a fraction < sizing.win_rate_high" in error_of(
        {"sizing": {"win_rate_low": "0.7"}}
    )
    assert "sizing.max_position_fraction: expected a fraction <=" in error_of(
        {"sizing": {"max_position_fraction": "0.6"}}
    )
    assert "limits.max_orders_per_minute_strategy: expected an integer <=" in error_of(
        {"limits": {"max_orders_per_minute_strategy": 61}}
    )


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"^<code>: limits.price_band: expected a fraction"):
        LimitsSection(price_band=Decimal("2"))
    with pytest.raises(ConfigError, match=r"heartbeat.timeout_seconds"):
        HeartbeatSection(interval_seconds=10, timeout_seconds=10)


def test_toml_syntax_error_gives_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[limits]\nprice_band = "0.1"\nmax_leverage = \n')
    with pytest.raises(ConfigError) as caught:
        load_risk_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: invalid TOML at column")
    assert caught.value.line == 3
    assert "\n" not in message


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[kill_switch]\nmax_loss_from_peak = "1.2"\n')
    with pytest.raises(ConfigError) as caught:
        load_risk_config(path)
    assert str(caught.value) == (
        f'{path}: kill_switch.max_loss_from_peak: expected a fraction in (0, 1], got "1.2"'
    )
    assert caught.value.key == "kill_switch.max_loss_from_peak"
    assert caught.value.got == "1.2"


def test_missing_or_binary_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read"):
        load_risk_config(tmp_path / "missing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"binary.toml: not UTF-8 text"):
        load_risk_config(binary)
