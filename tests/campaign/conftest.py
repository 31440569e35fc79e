"""Shared builders of the campaign tests: short campaigns, run once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from predator.campaign import Campaign, CampaignConfig, CampaignResult

HERE = Path(__file__).parent
SHORT_CHAOS = str(HERE / "short_chaos.toml")
GHOST_CHAOS = str(HERE / "ghost_chaos.toml")


@pytest.fixture(scope="session")
def short_config(tmp_path_factory: pytest.TempPathFactory) -> CampaignConfig:
    """Three days of crashes, a silent CRO, frozen data and venue storms (seed 1)."""
    out = tmp_path_factory.mktemp("short")
    return CampaignConfig(days=3, chaos=SHORT_CHAOS, seed=1, out_dir=str(out))


@pytest.fixture(scope="session")
def short_result(short_config: CampaignConfig) -> CampaignResult:
    return Campaign(short_config).run()
