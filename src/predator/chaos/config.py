"""The chaos configuration: which faults strike, how often and for how long.

``ChaosConfig.preset("medium")`` gives one of five intensity levels; ``load_chaos_config``
reads a TOML file that starts from a preset and overrides single faults (see
``docs/chaos.example.toml``). A mistake gives one ``ConfigError`` line naming the file,
the dotted key and what is allowed. Rates are floats: they are not money.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Mapping
from typing import Any

import msgspec

from predator.risk.config import ConfigError

__all__ = [
    "FAULT_CATEGORY",
    "FAULT_KINDS",
    "INTENSITIES",
    "SCENARIO_FAULT_CATEGORY",
    "SCENARIO_NAMES",
    "ChaosConfig",
    "ConfigError",
    "FaultSpec",
    "category_of",
    "load_chaos_config",
]

FAULT_CATEGORY: dict[str, str] = {
    "bus_delay": "bus",
    "bus_drop": "bus",
    "bus_duplicate": "bus",
    "bus_reorder": "bus",
    "bus_corrupt": "bus",
    "component_freeze": "crash",
    "process_crash": "crash",
    "api_timeout": "venue",
    "ghost_fill": "venue",
    "partial_fill_storm": "venue",
    "reject_storm": "venue",
    "frozen_market_data": "market",
    "venue_disconnect": "crash",
    "commit_failure": "storage",
    "slow_fsync": "storage",
    "strategy_exception": "strategy",
    "strategy_hang": "strategy",
    "order_flood": "strategy",
    "clock_skew": "clock",
    "score_corruption": "governance",
    "overfit_scoring": "governance",
}
"""Every fault kind (the config keys) and its category; the category sets the priority."""

FAULT_KINDS: tuple[str, ...] = tuple(FAULT_CATEGORY)

SCENARIO_FAULT_CATEGORY: dict[str, str] = {"strategy_silence": "strategy"}
"""Fault kinds only scenarios plan (not config keys): ``strategy_silence`` (silent death)."""


def category_of(kind: str) -> str:
    """The category of a fault kind (``bus``, ``venue`` ...); unknown kinds are their own."""
    return FAULT_CATEGORY.get(kind) or SCENARIO_FAULT_CATEGORY.get(kind) or kind


SCENARIO_NAMES: tuple[str, ...] = (
    "flash_crash",
    "bear_market",
    "parabolic_mania",
    "process_crash",
    "memory_leak",
    "bus_lag",
    "api_timeout",
    "ghost_fill",
    "partial_fill_storm",
    "silent_death",
    "tail_loss",
    "overfitting_loop",
    "over_aggression",
    "scoring_corruption",
    "cro_loss",
)
"""The scenarios of :class:`~predator.chaos.scenarios.ScenarioLibrary`, by name."""

INTENSITIES: tuple[str, ...] = ("none", "light", "medium", "heavy", "extreme")

_MULTIPLIER = {"none": 0.0, "light": 0.25, "medium": 1.0, "heavy": 3.0, "extreme": 10.0}
"""Rates of a preset: the medium rate times this."""

# kind: (medium rate per simulated day, min duration s, max duration s, default params)
_DEFAULTS: dict[str, tuple[float, int, int, dict[str, Any]]] = {
    "bus_delay": (2.0, 30, 300, {"min_delay_s": 5, "max_delay_s": 10}),
    "bus_drop": (1.0, 10, 120, {"probability": 0.5}),
    "bus_duplicate": (1.0, 10, 120, {"probability": 0.5}),
    "bus_reorder": (1.0, 10, 120, {"window": 3}),
    "bus_corrupt": (0.5, 10, 60, {"probability": 0.2}),
    "component_freeze": (0.25, 30, 300, {"component": "cro_heartbeat"}),
    "process_crash": (0.1, 0, 0, {}),
    "api_timeout": (1.0, 30, 300, {"probability": 1.0}),
    "ghost_fill": (0.1, 0, 0, {"fraction": 1.0}),
    "partial_fill_storm": (0.5, 300, 1800, {"min_fraction": 0.3, "max_fraction": 0.4}),
    "reject_storm": (0.5, 60, 600, {"probability": 1.0}),
    "frozen_market_data": (0.5, 300, 1800, {"mode": "stop"}),
    "venue_disconnect": (0.25, 30, 600, {}),
    "commit_failure": (0.5, 0, 60, {"failures": 3}),
    "slow_fsync": (1.0, 60, 600, {"delay_s": 2}),
    "strategy_exception": (0.5, 0, 0, {}),
    "strategy_hang": (0.25, 0, 0, {"overrun_s": 120}),
    "order_flood": (0.25, 60, 600, {"multiplier": 10}),
    "clock_skew": (0.1, 60, 600, {"skew_s": 30}),
    # Governance faults need an allocator (without one: not applicable); rare, since the
    # governance scenarios place them too.
    "score_corruption": (0.05, 14_400, 43_200, {}),
    "overfit_scoring": (0.01, 86_400, 259_200, {"swing": 20.0, "strategy": "*"}),
}

_PRESET_SCENARIOS: dict[str, tuple[str, ...]] = {
    "none": (),
    "light": ("api_timeout", "bus_lag"),
    "medium": ("api_timeout", "bus_lag", "flash_crash", "ghost_fill", "partial_fill_storm"),
    "heavy": (
        "api_timeout",
        "bus_lag",
        "flash_crash",
        "ghost_fill",
        "partial_fill_storm",
        "process_crash",
        "tail_loss",
        "over_aggression",
        "cro_loss",
        "silent_death",
    ),
    "extreme": SCENARIO_NAMES,
}


class FaultSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How one fault kind strikes: Poisson arrivals, a duration range, its parameters.

    ``rate_per_day``: mean arrivals per simulated day (0 disables the kind).
    ``min_duration_s``/``max_duration_s``: each occurrence lasts a whole number of
    seconds drawn uniformly in this range (0 for instantaneous faults: a crash, a
    ghost fill). ``params``: kind-specific knobs (see ``docs/chaos.example.toml``).
    """

    rate_per_day: float
    min_duration_s: int
    max_duration_s: int
    params: dict[str, Any] = {}


class ChaosConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A chaos campaign's faults and scenarios; ``intensity`` names the preset it began as.

    >>> ChaosConfig.preset("none").faults
    {}
    >>> ChaosConfig.preset("heavy").faults["bus_drop"].rate_per_day
    3.0
    """

    intensity: str
    faults: dict[str, FaultSpec]
    scenarios: tuple[str, ...] = ()

    @classmethod
    def preset(cls, name: str) -> ChaosConfig:
        """The preset intensity ``name``: none, light, medium, heavy or extreme."""
        if name not in _MULTIPLIER:
            raise ConfigError(
                "<preset>", "intensity", f"expected one of {', '.join(INTENSITIES)}, got {name!r}"
            )
        multiplier = _MULTIPLIER[name]
        faults: dict[str, FaultSpec] = {}
        if multiplier:
            for kind, (rate, low, high, params) in _DEFAULTS.items():
                faults[kind] = FaultSpec(
                    rate_per_day=rate * multiplier,
                    min_duration_s=low,
                    max_duration_s=high,
                    params=dict(params),
                )
        return cls(intensity=name, faults=faults, scenarios=_PRESET_SCENARIOS[name])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> ChaosConfig:
        """Validate ``data`` (a parsed TOML document); errors are one-line ConfigErrors."""
        _known(source, "", data, ("intensity", "scenarios", "faults"))
        intensity = data.get("intensity", "none")
        if intensity not in _MULTIPLIER:
            raise ConfigError.invalid(
                source, "intensity", f"one of {', '.join(INTENSITIES)}", intensity
            )
        base = cls.preset(intensity)
        scenarios = base.scenarios
        if "scenarios" in data:
            raw = data["scenarios"]
            if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
                raise ConfigError.invalid(source, "scenarios", "an array of scenario names", raw)
            for i, name in enumerate(raw):
                if name not in SCENARIO_NAMES:
                    raise ConfigError(
                        source,
                        f"scenarios[{i}]",
                        f"unknown scenario {name!r}{_suggest(name, SCENARIO_NAMES)}",
                    )
            scenarios = tuple(raw)
        faults = dict(base.faults)
        tables = data.get("faults", {})
        if not isinstance(tables, Mapping):
            raise ConfigError.invalid(source, "faults", "a table", tables)
        for kind in sorted(tables):
            if kind not in _DEFAULTS:
                raise ConfigError(
                    source, f"faults.{kind}", f"unknown fault kind{_suggest(kind, FAULT_KINDS)}"
                )
            faults[kind] = _fault(source, kind, tables[kind], faults.get(kind))
        ordered = {kind: faults[kind] for kind in FAULT_KINDS if kind in faults}
        return cls(intensity=intensity, faults=ordered, scenarios=scenarios)


def _suggest(name: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (one of {', '.join(choices)})"


def _known(source: str, prefix: str, table: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in sorted(table):
        if key not in keys:
            raise ConfigError(source, f"{prefix}{key}", f"unknown key{_suggest(key, keys)}")


def _fault(source: str, kind: str, raw: object, base: FaultSpec | None) -> FaultSpec:
    prefix = f"faults.{kind}."
    if not isinstance(raw, Mapping):
        raise ConfigError.invalid(source, f"faults.{kind}", "a table", raw)
    _known(source, prefix, raw, ("rate_per_day", "min_duration_s", "max_duration_s", "params"))
    rate0, low0, high0, params0 = _DEFAULTS[kind]
    if base is not None:
        rate0, low0, high0, params0 = (
            base.rate_per_day,
            base.min_duration_s,
            base.max_duration_s,
            base.params,
        )
    rate = raw.get("rate_per_day", rate0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise ConfigError.invalid(source, prefix + "rate_per_day", "a number >= 0", rate)
    if rate < 0:
        raise ConfigError.invalid(source, prefix + "rate_per_day", "a number >= 0", rate)
    low = raw.get("min_duration_s", low0)
    high = raw.get("max_duration_s", high0)
    for key, value in (("min_duration_s", low), ("max_duration_s", high)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError.invalid(source, prefix + key, "a whole number of seconds >= 0", value)
    if high < low:
        raise ConfigError.invalid(
            source,
            prefix + "max_duration_s",
            f"a number of seconds >= min_duration_s ({low})",
            high,
        )
    params = dict(params0)
    given = raw.get("params", {})
    if not isinstance(given, Mapping):
        raise ConfigError.invalid(source, prefix + "params", "a table", given)
    allowed = tuple(_DEFAULTS[kind][3])
    for key in sorted(given):
        if key not in allowed:
            hint = _suggest(key, allowed) if allowed else f" ({kind} takes no params)"
            raise ConfigError(source, f"{prefix}params.{key}", f"unknown parameter{hint}")
        default, value = _DEFAULTS[kind][3][key], given[key]
        if isinstance(default, str):
            ok = isinstance(value, str)
            expected = "a string"
        else:
            ok = not isinstance(value, bool) and isinstance(value, int | float) and value >= 0
            ok = ok and math.isfinite(value)
            expected = "a number >= 0"
        if not ok:
            raise ConfigError.invalid(source, f"{prefix}params.{key}", expected, value)
        params[key] = value
    return FaultSpec(
        rate_per_day=float(rate), min_duration_s=low, max_duration_s=high, params=params
    )


def load_chaos_config(path: str | os.PathLike[str]) -> ChaosConfig:
    """Read and validate a chaos TOML file; any problem raises a one-line ConfigError.

    The file starts from the preset named by ``intensity`` (default ``none``); each
    ``[faults.KIND]`` table overrides that kind's keys; ``scenarios`` replaces the list.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(source, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"invalid TOML: {exc}") from None
    return ChaosConfig.from_dict(data, source=source)
