"""Every scenario of the library, alone in a campaign: injected, detected, handled.

Each runs in a six-day campaign (seed 1) whose chaos is that scenario only. The campaign
must PASS every gate (handled: no blind trading, every halt held and explained, books
equal to the venue, strategies isolated), the scenario must be placed (``ScenarioStarted``)
and its detectors (the library's ``detected_by``: a protection, a kill-switch trigger,
reconciliation, the stale-data guard, the CRO watchdog, the allocator...) must show in
the journal within its window. Five scenarios leave nothing to detect in six days on
this data, and say why below; what handles them is still asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from predator.campaign import Campaign, CampaignConfig, CampaignResult
from predator.chaos.scenarios import SCENARIO_NAMES

NOTHING_TO_DETECT = {
    "bear_market": "the trend strategies are long-only: they step aside, no loss limit is near",
    "parabolic_mania": "the wilder path stays inside the 10 % price band and the loss limits",
    "tail_loss": "the trend followers exit before a drawdown protection fires",
    "bus_lag": "5-10 s of lag is under the 180 s stale-data limit and loses nothing",
    "partial_fill_storm": "bar fills are exact partial fills: the books never differ",
}
"""Scenarios whose detectors have nothing to fire on in this setting, and why."""


def _run(name: str, tmp_path: Path) -> CampaignResult:
    chaos = tmp_path / f"{name}.toml"
    chaos.write_text(f'intensity = "none"\nscenarios = ["{name}"]\n', encoding="utf-8")
    return Campaign(CampaignConfig(days=6, chaos=str(chaos), seed=1)).run()


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_each_scenario_is_injected_detected_and_handled(name: str, tmp_path: Path) -> None:
    result = _run(name, tmp_path)
    assert result.passed, [(g.name, g.detail) for g in result.failures()]
    log = result.chaos_log
    assert [e["scenario"] for e in log if e["type"] == "ScenarioStarted"] == [name]
    (ended,) = [e for e in log if e["type"] == "ScenarioEnded"]
    if name in NOTHING_TO_DETECT:
        assert result.metrics["state_corruption_incidents"] == 0
        return
    assert ended["handled"], f"{name}: none of {ended['detail']['expected']} fired"
    assert ended["detected_by"]


def test_scenarios_with_nothing_to_detect_are_library_scenarios() -> None:
    assert set(NOTHING_TO_DETECT) <= set(SCENARIO_NAMES)
