"""The chaos plan: config presets and TOML, deterministic fault schedules, the chaos bus."""

from __future__ import annotations

import pytest

from predator.chaos import (
    FAULT_KINDS,
    ChaosBus,
    ChaosConfig,
    ChaosEngine,
    FaultCleared,
    FaultInjected,
    ScenarioStarted,
    load_chaos_config,
)
from predator.chaos.engine import NS_PER_DAY
from predator.risk.config import ConfigError

DAYS = 30


def _plan(seed: int, intensity: str = "heavy") -> list:
    engine = ChaosEngine(
        ChaosConfig.preset(intensity),
        seed=seed,
        start_ns=0,
        end_ns=DAYS * NS_PER_DAY,
        targets=["sma_cross", "flood"],
    )
    return engine.plan


def test_same_seed_gives_the_same_plan() -> None:
    assert _plan(7) == _plan(7)
    assert len(_plan(7)) > 100


def test_different_seeds_give_different_plans() -> None:
    assert _plan(7) != _plan(8)


def test_fault_rates_rise_with_intensity() -> None:
    sizes = [len(_plan(3, name)) for name in ("none", "light", "medium", "heavy", "extreme")]
    assert sizes[0] == 0
    assert sizes == sorted(sizes) and len(set(sizes)) == 5


def test_every_fault_kind_appears_in_an_extreme_month() -> None:
    kinds = {fault.kind for fault in _plan(11, "extreme")}
    assert kinds == set(FAULT_KINDS)


def test_plan_is_sorted_with_durations_in_range_and_valid_targets() -> None:
    config = ChaosConfig.preset("heavy")
    plan = _plan(5)
    assert [f.at_ns for f in plan] == sorted(f.at_ns for f in plan)
    for fault in plan:
        spec = config.faults[fault.kind]
        assert spec.min_duration_s * 10**9 <= fault.duration_ns <= spec.max_duration_s * 10**9
        if fault.kind in ("strategy_exception", "strategy_hang", "order_flood"):
            assert fault.target in ("sma_cross", "flood")
    assert len({f.fault_id for f in plan}) == len(plan)


def test_chaos_bus_orders_one_instant_by_priority_then_publication() -> None:
    bus = ChaosBus()
    seen: list[str] = []
    bus.subscribe(FaultInjected, lambda e: seen.append(e.fault_id))
    with bus.batch():
        bus.publish(ScenarioStarted(ts=5, scenario="flash_crash", group="market"))
        bus.publish(FaultInjected(ts=5, fault_id="drop", kind="bus_drop", target="orders"))
        bus.publish(FaultInjected(ts=5, fault_id="api", kind="api_timeout", target="venue"))
        bus.publish(FaultInjected(ts=5, fault_id="crash", kind="process_crash", target="node"))
        bus.publish(FaultCleared(ts=4, fault_id="old", kind="bus_drop"))
    assert seen == ["crash", "api", "drop"]
    assert [type(e).__name__ for e in bus.log] == [
        "FaultCleared",
        "FaultInjected",
        "FaultInjected",
        "FaultInjected",
        "ScenarioStarted",
    ]


def test_toml_overrides_a_preset(tmp_path) -> None:
    path = tmp_path / "chaos.toml"
    path.write_text(
        'intensity = "light"\nscenarios = ["flash_crash"]\n'
        "[faults.bus_drop]\nrate_per_day = 9\nparams = { probability = 0.9 }\n"
    )
    config = load_chaos_config(path)
    assert config.intensity == "light"
    assert config.scenarios == ("flash_crash",)
    assert config.faults["bus_drop"].rate_per_day == 9.0
    assert config.faults["bus_drop"].params["probability"] == 0.9
    assert config.faults["bus_delay"] == ChaosConfig.preset("light").faults["bus_delay"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('intensity = "wild"', "intensity: expected one of none, light"),
        (
            "[faults.bus_dorp]\nrate_per_day = 1",
            "faults.bus_dorp: unknown fault kind; did you mean 'bus_drop'?",
        ),
        (
            "[faults.bus_drop]\nrate_per_day = -1",
            "faults.bus_drop.rate_per_day: expected a number >= 0",
        ),
        (
            "[faults.bus_drop]\nmin_duration_s = 10\nmax_duration_s = 5",
            "faults.bus_drop.max_duration_s: expected a number of seconds >= min_duration_s",
        ),
        ("[faults.bus_drop]\nparams = { probabilty = 1 }", "did you mean 'probability'?"),
        ('scenarios = ["flash_crsh"]', "scenarios[0]: unknown scenario 'flash_crsh'"),
        ("intensity = ", "invalid TOML"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_key(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "chaos.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_chaos_config(path)
    assert message in str(error.value)
    assert str(error.value).startswith(str(path))
    assert "\n" not in str(error.value)


def test_the_documented_example_is_the_medium_preset_and_names_every_kind() -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "docs" / "chaos.example.toml"
    assert load_chaos_config(example) == ChaosConfig.preset("medium")
    text = example.read_text()
    for kind in FAULT_KINDS:
        assert f"[faults.{kind}]" in text
