"""Campaigns end to end: deterministic, passing under chaos, failing when they must."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import msgspec

from predator.campaign import GATES, Campaign, CampaignConfig, CampaignResult
from predator.campaign.profile import CAMPAIGN_RISK

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs"
SHORT_CHAOS = str(HERE / "short_chaos.toml")
GHOST_CHAOS = str(HERE / "ghost_chaos.toml")


def _faults(result: CampaignResult) -> list[tuple[int, str]]:
    return [(e["ts"], e["fault_id"]) for e in result.chaos_log if e["type"] == "FaultInjected"]


def test_the_same_seed_gives_the_same_journal_digest_and_scorecard() -> None:
    config = CampaignConfig(days=2, chaos="heavy", seed=5)
    first, second = Campaign(config).run(), Campaign(config).run()
    assert first.journal_digest == second.journal_digest
    assert first.gates == second.gates
    assert first.metrics == second.metrics
    assert _faults(first) == _faults(second) and _faults(first)


def test_different_seeds_give_different_fault_schedules() -> None:
    one = Campaign(CampaignConfig(days=2, chaos="heavy", seed=1)).run()
    two = Campaign(CampaignConfig(days=2, chaos="heavy", seed=2)).run()
    assert _faults(one) != _faults(two)
    assert one.journal_digest != two.journal_digest


def test_a_short_campaign_passes_with_halts_crashes_and_automatic_recoveries(
    short_result: CampaignResult,
) -> None:
    result = short_result
    assert result.verdict == "PASS", [g for g in result.gates if g.status != "PASS"]
    assert [g.name for g in result.gates] == list(GATES)
    metrics = result.metrics
    assert metrics["crashes"] >= 1
    assert metrics["halts"] >= 1 and metrics["recovery_time_s"]["count"] >= 1
    assert metrics["state_corruption_incidents"] == 0
    assert metrics["execution_portfolio_mismatches"]["unresolved"] == 0
    assert result.operator["dead"] == {
        "flood": "killed for its own behaviour: a deliberately faulty strategy"
    }
    assert result.operator["actions"].get("resume", 0) >= 1  # approved by the auto-operator


def test_the_auto_operator_journals_its_approvals_with_a_reason(
    short_result: CampaignResult, short_config: CampaignConfig
) -> None:
    from predator.ledger import Journal

    journal = Journal(Path(short_config.out_dir or "") / "journal.sqlite")
    try:
        records = list(journal.records())
    finally:
        journal.close()
    approvals = [r.payload for r in records if r.type == "OperatorApproved"]
    assert approvals and all(a["actor"] == "auto-operator" and a["reason"] for a in approvals)
    assert journal.digest == short_result.journal_digest
    assert any(r.type == "NodeRestarted" for r in records)


def test_a_ghost_fill_campaign_fails_when_reconciliation_is_switched_off() -> None:
    blind = Campaign(CampaignConfig(days=2, chaos=GHOST_CHAOS, seed=3, reconciliation=False)).run()
    assert blind.verdict == "FAIL"
    failed = {g.name: g for g in blind.failures()}
    assert "state_consistent" in failed
    assert any("venue" in line or "fee" in line for line in failed["state_consistent"].evidence)


def test_reconciliation_reverses_ghost_fills_without_halting_the_system() -> None:
    seen = Campaign(CampaignConfig(days=2, chaos=GHOST_CHAOS, seed=3)).run()
    gate = next(g for g in seen.gates if g.name == "state_consistent")
    assert gate.status == "PASS" and seen.fatal is None
    reversed_ = [i for i in seen.incidents if i["type"] == "FillReversed"]
    assert reversed_  # each one corrected, with its post-mortem
    assert seen.metrics["execution_portfolio_mismatches"]["unresolved"] == 0
    assert seen.metrics["kill_switch_trips_by_scope"]["global"] == 0


def test_the_json_and_html_reports_are_written_to_the_out_dir(
    short_result: CampaignResult, short_config: CampaignConfig
) -> None:
    out = Path(short_config.out_dir or "")
    document = json.loads((out / "campaign.json").read_text())
    for key in ("verdict", "seed", "days", "chaos", "metrics", "scenarios", "journal_digest"):
        assert key in document
    for key in ("gates", "incidents", "reproduce", "config", "chaos_log", "equity"):
        assert key in document
    assert document["journal_digest"] == short_result.journal_digest
    assert msgspec.convert(document["config"], CampaignConfig) == short_config
    html = (out / "campaign.html").read_text()
    assert html.count("<svg") == 2 and "Chaos timeline" in html
    linked = [i for i in short_result.incidents if i["postmortem"]]
    assert linked and Path(linked[0]["postmortem"]).name in html


def test_the_documented_campaign_risk_profile_is_the_one_campaigns_use() -> None:
    with open(DOCS / "campaign-risk.toml", "rb") as handle:
        assert tomllib.load(handle) == CAMPAIGN_RISK


def test_every_failure_names_its_seed_and_reproduction_command() -> None:
    config = CampaignConfig(days=2, chaos=SHORT_CHAOS, seed=7, out_dir="runs/x")
    assert config.command() == (
        f"predator campaign --days 2 --chaos {SHORT_CHAOS} --seed 7 --out runs/x --replay"
    )
    unrecorded = CampaignConfig(days=2, chaos="extreme", seed=7)  # the command records it
    assert unrecorded.command() == (
        "predator campaign --days 2 --chaos extreme --seed 7 --out campaign-seed-7"
    )
