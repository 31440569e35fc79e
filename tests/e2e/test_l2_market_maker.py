"""Issue 4 acceptance on the real BTCUSDT spot capture: the market maker trades an L2 book.

The built-in ``market_maker`` runs through the whole order path (risk, execution, the L2
paper exchange, portfolio, ledger, journal) on 2024-08-08 23:54 .. 2024-08-09 00:05
(the 0809 file continues 0808): it earns maker fills, the ledger balances after every
journaled event, the journal audits clean, the same inputs give the same digest, and a
depth gap stops its quoting for good (the capture never resynchronises).
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import msgspec
import pytest

from predator.ledger import Journal, JournalRecord
from predator.node.l2_run import L2Replay, ReplayConfig, ReplayResult
from predator.testkit import shared_data_dir
from predator.validation import audit_journal

SPOT = ["hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"]
SPOT_CONTINUED = [*SPOT, "hftbacktest_binance_spot_btcusdt_20240809.jsonl.gz"]
CONFIG = ReplayConfig(strategy="market_maker", commission="0.001")
MAX_INVENTORY = 500_000
"""The market maker's default ``max_inventory`` (0.005 BTC) in the capture's size units."""


def paths(names: list[str]) -> list[str | Path]:
    return [shared_data_dir() / name for name in names]


def records(path: Path) -> list[JournalRecord]:
    journal = Journal(path)
    try:
        return list(journal.records())
    finally:
        journal.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReplayResult, Path, float]:
    journal = tmp_path_factory.mktemp("mm") / "mm.sqlite"
    config = msgspec.structs.replace(CONFIG, journal=str(journal))
    started = time.perf_counter()
    result = L2Replay(paths(SPOT_CONTINUED), config).run()
    return result, journal, time.perf_counter() - started


def test_the_market_maker_earns_maker_fills_on_the_real_capture(
    run: tuple[ReplayResult, Path, float],
) -> None:
    result, journal, seconds = run
    summary = result.summary()
    rows = records(journal)
    submitted = {
        r.payload["client_order_id"]: r.payload["request"]
        for r in rows
        if r.type == "OrderSubmitted"
    }
    fills = [r.payload for r in rows if r.type == "OrderFilled"]

    assert summary["events"] == 41_249 + 58_325
    assert summary["maker_fills"] > 100
    assert summary["fills"] == summary["maker_fills"] + summary["taker_fills"]
    # Quotes are post-only: the only taker fills are the close at the end of the data.
    takers = [f for f in fills if f["liquidity"] == "taker"]
    assert all(submitted[f["client_order_id"]]["close_position"] for f in takers)
    assert all(
        request["post_only"] and request["order_type"] == "limit"
        for request in submitted.values()
        if not request["close_position"]
    )
    assert summary["rejections"] == {}
    assert summary["strategies"]["market_maker"]["state"] == "active"
    assert seconds < 30, f"the spot run took {seconds:.1f} s"


def test_inventory_never_passes_the_limit(run: tuple[ReplayResult, Path, float]) -> None:
    _result, journal, _seconds = run
    position = 0
    worst = 0
    for row in records(journal):
        if row.type == "OrderFilled":
            position += row.payload["side"] * row.payload["quantity"]
            worst = max(worst, abs(position))

    assert 0 < worst <= MAX_INVENTORY
    assert position == 0  # the run ends flat


def test_the_ledger_balances_after_every_journaled_event_and_the_audit_is_clean(
    run: tuple[ReplayResult, Path, float],
) -> None:
    result, journal, _seconds = run
    report = audit_journal(journal)

    assert result.backtest.balance_checks == result.backtest.journal_events
    assert report.clean, report.render()
    assert report.digest == result.journal_digest
    assert report.fills == result.backtest.fills
    assert result.summary()["risk"]["kill_switch_trips"] == 0
    assert result.summary()["risk"]["reconciliation"]["mismatches"] == 0


def test_the_same_capture_and_config_give_the_same_digest(
    run: tuple[ReplayResult, Path, float],
) -> None:
    result, _journal, _seconds = run
    again = L2Replay(paths(SPOT_CONTINUED), CONFIG).run()

    assert again.journal_digest == result.journal_digest
    assert again.summary()["final_equity_exact"] == result.summary()["final_equity_exact"]


def test_a_depth_gap_stops_the_quoting_for_the_rest_of_the_capture(tmp_path: Path) -> None:
    with gzip.open(shared_data_dir() / SPOT[0], "rb") as handle:
        lines = handle.read().splitlines(keepends=True)
    diffs = [i for i, line in enumerate(lines) if b"depthUpdate" in line]
    del lines[diffs[1_000]]  # about 100 s in
    capture = tmp_path / "gap.jsonl.gz"
    with gzip.open(capture, "wb") as handle:
        handle.write(b"".join(lines))
    journal = tmp_path / "gap.sqlite"
    config = msgspec.structs.replace(CONFIG, journal=str(journal))
    result = L2Replay([capture], config).run()
    rows = records(journal)
    gap = [r for r in rows if r.type == "MarketDataInvalidated"][-1]
    after = [r for r in rows if r.seq > gap.seq]

    assert result.data_gaps == 1 and "depth gap" in gap.payload["reason"]
    # Quotes withdrawn, none sent again; only the end-of-data close was tried (the venue,
    # blind too, refused it) and nothing filled after the gap.
    sent = [r.payload["request"] for r in after if r.type == "OrderSubmitted"]
    assert all(request["close_position"] for request in sent)
    assert not any(r.type == "OrderFilled" for r in after)
    assert any(r.type == "OrderCanceled" for r in after)
    assert result.backtest.fills > 0
    assert audit_journal(journal).clean


def test_a_maker_rebate_is_charged_to_maker_fills_and_audits_clean(tmp_path: Path) -> None:
    journal = tmp_path / "rebate.sqlite"
    config = msgspec.structs.replace(CONFIG, maker_fee="-0.0001", journal=str(journal))
    result = L2Replay(paths(["hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"]), config).run()
    fills = [r.payload for r in records(journal) if r.type == "OrderFilled"]
    maker = [f for f in fills if f["liquidity"] == "maker"]
    taker = [f for f in fills if f["liquidity"] == "taker"]
    assert maker and taker
    assert all(f["fee"] < 0 for f in maker)  # rebated
    assert all(f["fee"] > 0 for f in taker)
    report = audit_journal(journal)
    assert report.clean, report.findings[:3]
    assert result.backtest.fills == len(fills) == result.maker_fills + result.taker_fills
