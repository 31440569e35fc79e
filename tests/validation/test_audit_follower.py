"""The incremental audit (a campaign supervisor's) finds what the full audit finds.

A restarted node audits its whole journal before it trades; a supervisor restarting it a
thousand times in a simulated year keeps an :class:`AuditFollower` instead and feeds it
each durable record once. Its findings must be the full audit's, fed in any chunks, on a
real chaos journal (ghost fills reversed, crashes, kill switches) and on tampered copies.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from predator.campaign import Campaign, CampaignConfig
from predator.ledger.journal import JournalRecord
from predator.validation.audit import AuditFollower, audit
from predator.validation.replay import read_journal

CHAOS = Path(__file__).resolve().parents[1] / "campaign" / "ghost_chaos.toml"


@pytest.fixture(scope="module")
def chaos_journal(tmp_path_factory: pytest.TempPathFactory) -> list[JournalRecord]:
    out = tmp_path_factory.mktemp("ghosts")
    Campaign(CampaignConfig(days=4, chaos="extreme", seed=3, out_dir=str(out))).run()
    return list(read_journal(out / "journal.sqlite"))


def _followed(records: list[JournalRecord], chunk: int) -> list[tuple[int | None, str, str]]:
    follower = AuditFollower()
    for start in range(0, len(records), chunk):
        follower.feed(records[start : start + chunk])
    return [(f.seq, f.check, f.message) for f in follower.findings()]


def _full(records: list[JournalRecord]) -> list[tuple[int | None, str, str]]:
    return [(f.seq, f.check, f.message) for f in audit(records, chain_verified=True).findings]


def _with_payload(record: JournalRecord, **changes: object) -> JournalRecord:
    payload = {**record.payload, **changes}
    return msgspec.structs.replace(record, payload=payload, raw=b"")


@pytest.mark.parametrize("chunk", [1, 7, 500, 10**9])
def test_the_follower_finds_what_the_full_audit_finds_on_a_chaos_journal(
    chaos_journal: list[JournalRecord], chunk: int
) -> None:
    types = {r.type for r in chaos_journal}
    assert {"FillReversed", "NodeCrashed", "KillSwitchTripped"} <= types  # a real ordeal
    assert _followed(chaos_journal, chunk) == _full(chaos_journal)


def test_tampering_is_found_by_both_the_same_way(chaos_journal: list[JournalRecord]) -> None:
    records = list(chaos_journal)
    fills = [i for i, r in enumerate(records) if r.type == "OrderFilled"]
    reversed_ids = {r.payload["trade_id"] for r in records if r.type == "FillReversed"}
    kept = [i for i in fills if records[i].payload["trade_id"] not in reversed_ids]
    a, b = kept[3], kept[-2]
    records[a] = _with_payload(records[a], fee=records[a].payload["fee"] + 1)  # a fee
    records[b] = _with_payload(records[b], quantity=records[b].payload["quantity"] * 2)
    reset = next(i for i, r in enumerate(records) if r.type == "OperatorApproved")
    del records[reset]  # a kill-switch reset without its approval
    full = _full(records)
    assert {check for _seq, check, _m in full} >= {"fee", "kill_switch"}
    for chunk in (1, 13, 10**9):
        assert _followed(records, chunk) == full


def test_a_fill_the_venue_never_made_is_not_fee_checked_when_named(
    chaos_journal: list[JournalRecord],
) -> None:
    records = list(chaos_journal)
    index = next(i for i, r in enumerate(records) if r.type == "OrderFilled")
    trade_id = records[index].payload["trade_id"]
    records[index] = _with_payload(records[index], fee=records[index].payload["fee"] + 5)
    follower = AuditFollower()
    follower.feed(records)
    assert any(f.check == "fee" for f in follower.findings())
    assert not any(f.check == "fee" for f in follower.findings(unmade_fills={trade_id}))
    full = audit(records, chain_verified=True, unmade_fills={trade_id}).findings
    assert follower.findings(unmade_fills={trade_id}) == full
