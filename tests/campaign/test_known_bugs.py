"""System bugs the first campaigns found, kept as regression tests now that they are fixed."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from predator.campaign import Campaign, CampaignConfig
from predator.campaign.data import CampaignData
from predator.chaos import PlannedFault
from predator.validation.replay import read_journal

NS = 1_000_000_000

HERE = Path(__file__).resolve().parent
SHORT_CHAOS = str(HERE / "short_chaos.toml")


def test_a_node_crashing_twice_keeps_the_orders_it_adopted_after_the_first_crash() -> None:
    """Found by the campaigns: ``recover`` rebuilt orders from ``OrderSubmitted`` only, so
    after a second crash the orders adopted after the first one were forgotten, adopted
    again, and the audit refused the journal. Recovery now replays ``OrderAdopted``."""
    config = CampaignConfig(days=3, chaos=SHORT_CHAOS, seed=1)
    result = Campaign(config).run()
    assert result.fatal is None, result.fatal


def test_a_market_fault_that_ends_while_the_node_is_down_is_not_carried_forever(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Found by the extreme sweep (seed 15): a frozen feed still active when the node
    crashed, whose end fell during the downtime, was re-injected into the restarted node
    with its clearance in the past, so the feed stayed frozen for the rest of the campaign
    (and through every later restart). A fault whose time is over is now cleared."""
    import predator.campaign.campaign as campaign

    real = campaign.build_feed
    day = 86_400 * 1_000_000_000

    def with_faults(config: CampaignConfig, chaos: object) -> CampaignData:
        data = real(config, chaos)  # type: ignore[arg-type]
        start = data.feed.first_ts + day
        frozen = PlannedFault(
            at_ns=start,
            fault_id="frozen-test",
            kind="frozen_market_data",
            target="market_data",
            duration_ns=30 * 60 * NS,
            params={"mode": "stop"},
        )
        crash = PlannedFault(
            at_ns=start + 29 * 60 * NS + 30 * NS,  # 30 s before the freeze ends
            fault_id="crash-test",
            kind="process_crash",
            target="node",
            duration_ns=0,
        )
        return msgspec.structs.replace(data, faults=(*data.faults, frozen, crash))

    monkeypatch.setattr(campaign, "build_feed", with_faults)
    config = CampaignConfig(days=3, chaos="none", seed=1, restart_s=120, out_dir=str(tmp_path))
    result = Campaign(config).run()
    frozen = [e for e in result.chaos_log if e.get("fault_id") == "frozen-test"]
    assert [e["type"] for e in frozen] == ["FaultInjected", "FaultCleared"]
    crashed = next(e for e in result.chaos_log if e.get("fault_id") == "crash-test")
    assert crashed["ts"] < frozen[1]["ts"] <= crashed["ts"] + 10 * 60 * NS  # at the restart
    assert result.metrics["crashes"] == 1
    # The node traded on after the restart (a frozen feed would have stopped it for good).
    records = list(read_journal(tmp_path / "journal.sqlite"))
    restarted = next(r.ts for r in records if r.type == "NodeRestarted")
    assert any(r.type == "OrderSubmitted" and r.ts > restarted + day for r in records)
    assert result.passed, [g.name for g in result.failures()]
