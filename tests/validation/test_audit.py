"""The audit on real journals: a real GOOG run audits clean; every corruption is named.

Each corruption works on a copy of the SQLite journal changed with ``sqlite3`` directly,
the way a bad disk, a bad tool or a bad actor would change it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from predator.cli import main
from predator.ledger import Journal
from predator.ledger.journal import GENESIS
from predator.market import load_bars
from predator.node import Backtest, BacktestConfig, BacktestResult, StrategySpec
from predator.testkit import shared_data_dir
from predator.validation import AuditReport, Finding, audit, audit_journal

REPO = Path(__file__).resolve().parents[2]
GOOG = shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv"

Row = tuple[int, int, str, bytes, bytes]  # seq, ts, type, payload, chain


def _run(path: Path, **config: Any) -> BacktestResult:
    return Backtest(load_bars(GOOG), BacktestConfig(journal=str(path), **config)).run()


@pytest.fixture(scope="module")
def goog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BacktestResult]:
    """A real sma_cross run on GOOG daily bars with a 0.2 % commission."""
    path = tmp_path_factory.mktemp("audit") / "goog.sqlite"
    result = _run(path, commission="0.002", params={"fast": 10, "slow": 20})
    return path, result


# -- helpers: copies changed with sqlite3 ---------------------------------------------------
def _copy(source: Path, target: Path) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


def _rows(path: Path) -> list[Row]:
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, ts, type, payload, chain FROM events ORDER BY seq").fetchall()
    db.close()
    return [(seq, ts, kind, bytes(payload), bytes(chain)) for seq, ts, kind, payload, chain in rows]


def _execute(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    db = sqlite3.connect(path)
    with db:
        for sql, params in statements:
            db.execute(sql, params)
    db.close()


def _rechain(path: Path, events: list[tuple[int, str, bytes]]) -> None:
    """Rewrite the events as seq 1..n with a valid chain: a forgery only semantics can catch."""
    chain = GENESIS
    rows = []
    for seq, (ts, kind, payload) in enumerate(events, 1):
        chain = hashlib.blake2b(chain + payload, digest_size=16).digest()
        rows.append((seq, ts, kind, payload, chain))
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM events")
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
    db.close()


def _nth(rows: list[Row], kind: str, n: int) -> Row:
    return [row for row in rows if row[2] == kind][n]


def _checks_at(report: AuditReport, seq: int) -> set[str]:
    return {f.check for f in report.findings if f.seq == seq}


def _cli(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, dict[str, Any]]:
    code = main(["audit", "--journal", str(path)])
    text = capsys.readouterr().out
    assert main(["audit", "--journal", str(path), "--json"]) == code
    return code, text, json.loads(capsys.readouterr().out)


# -- clean journals -------------------------------------------------------------------------
def test_a_real_goog_run_with_commission_audits_clean(
    goog: tuple[Path, BacktestResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = goog
    assert result.performance.fees > 0 and result.fills > 50
    report = audit_journal(path)
    assert report.findings == []
    assert report.clean and report.complete
    assert report.events == result.journal_events
    assert report.digest == result.journal_digest
    assert (report.fills, report.orders, report.trades) == (
        result.fills,
        result.orders,
        result.trades,
    )
    code, text, document = _cli(capsys, path)
    assert code == 0
    assert text.startswith("clean")
    assert document["clean"] is True and document["findings"] == []
    assert document["events"] == result.journal_events


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(
            {
                "strategies": (
                    StrategySpec(strategy="sma_cross", allocation="0.25"),
                    StrategySpec(strategy="ema_cross"),
                ),
                "commission": "0.001",
                "commission_fixed": "1",
            },
            id="two-pools-fixed-commission",
        ),
        pytest.param(
            {
                "strategies": (
                    StrategySpec(strategy="sma_cross"),
                    StrategySpec(strategy="ema_cross"),
                    StrategySpec(strategy="sma_cross", params={"fast": 5}),
                ),
                "commission_per_unit": "0.01",
                "profit_allocation": {"reserve": "0.7", "operations": "0.3"},
            },
            id="three-pools-uneven-split-profit-allocation",
        ),
        pytest.param({"finalize": False, "commission": "0.002"}, id="position-left-open"),
        pytest.param(
            {"risk": tomllib.loads((REPO / "docs" / "risk.example.toml").read_text())},
            id="kill-switch-trips",
        ),
    ],
)
def test_other_real_runs_audit_clean(tmp_path: Path, config: dict[str, Any]) -> None:
    path = tmp_path / "run.sqlite"
    result = _run(path, **config)
    report = audit_journal(path)
    assert report.findings == []
    assert report.fills == result.fills


# -- corruptions ----------------------------------------------------------------------------
def test_an_edited_fill_price_is_named_by_chain_fee_and_pnl(
    goog: tuple[Path, BacktestResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(goog[0], tmp_path / "edited.sqlite")
    rows = _rows(path)
    seq, _, _, payload, _ = _nth(rows, "OrderFilled", 10)
    fill = msgspec.json.decode(payload)
    fill["price"] += 100  # one dollar more per share
    _execute(
        path, ("UPDATE events SET payload = ? WHERE seq = ?", (msgspec.json.encode(fill), seq))
    )
    completed = rows[-1][0]
    report = audit_journal(path)
    assert not report.clean
    assert {"chain", "fee"} <= _checks_at(report, seq)
    # the chain resumes after the edited link: only that seq is broken
    assert [f.seq for f in report.findings if f.check == "chain"] == [seq]
    at_end = {f.message.split()[0] for f in report.findings if f.seq == completed}
    assert {"realized_pnl", "final_equity"} <= at_end
    assert "pnl" in _checks_at(report, completed) and "balance" in _checks_at(report, completed)
    code, text, document = _cli(capsys, path)
    assert code == 1
    assert f"seq {seq:>7}  chain" in text
    assert {"seq": seq, "check": "chain"}.items() <= document["findings"][0].items()


def test_a_removed_event_is_named_as_a_gap(
    goog: tuple[Path, BacktestResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(goog[0], tmp_path / "removed.sqlite")
    seq = _nth(_rows(path), "OrderFilled", 20)[0]
    _execute(path, ("DELETE FROM events WHERE seq = ?", (seq,)))
    report = audit_journal(path)
    [gap] = [f for f in report.findings if f.check == "sequence"]
    assert gap.seq == seq and gap.message.startswith("missing")
    assert "chain" not in report.counts  # the chain resumes after the gap
    # the lost fill also shows in the recomputed totals
    assert "counts" in report.counts and "pnl" in report.counts
    code, _, document = _cli(capsys, path)
    assert code == 1
    assert document["findings"][0]["seq"] == seq


def test_a_duplicated_fill_with_a_valid_chain_is_a_trade_id_applied_twice(
    goog: tuple[Path, BacktestResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(goog[0], tmp_path / "duplicated.sqlite")
    rows = _rows(path)
    original = _nth(rows, "OrderFilled", 30)
    index = rows.index(original)
    events = [(ts, kind, payload) for _, ts, kind, payload, _ in rows]
    events.insert(index + 1, events[index])  # the copy right after, later seqs shift by one
    _rechain(path, events)
    copy_seq = original[0] + 1
    trade_id = msgspec.json.decode(original[3])["trade_id"]
    report = audit_journal(path)
    # the forgery is chained and numbered correctly: only the semantic checks catch it
    assert "chain" not in report.counts and "sequence" not in report.counts
    assert (
        Finding(
            copy_seq,
            "duplicate_fill",
            f"trade_id {trade_id} applied twice (first at seq {original[0]})",
        )
        in report.findings
    )
    assert "order_state" in _checks_at(report, copy_seq)  # filled -> filled
    code, text, _ = _cli(capsys, path)
    assert code == 1
    assert f"trade_id {trade_id} applied twice" in text


def test_a_reordered_pair_breaks_the_chain_at_the_first_of_the_two(
    goog: tuple[Path, BacktestResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(goog[0], tmp_path / "reordered.sqlite")
    first = _nth(_rows(path), "OrderSubmitted", 5)[0]  # swapped with its OrderAccepted
    _execute(
        path,
        ("UPDATE events SET seq = -1 WHERE seq = ?", (first,)),
        ("UPDATE events SET seq = ? WHERE seq = ?", (first, first + 1)),
        ("UPDATE events SET seq = ? WHERE seq = -1", (first + 1,)),
    )
    report = audit_journal(path)
    chain = [f for f in report.findings if f.check == "chain"]
    assert report.findings[0] == chain[0]
    assert chain[0].seq == first and "reordered" in chain[0].message
    assert "coverage" in _checks_at(report, first)  # accepted before it was submitted
    code, _, document = _cli(capsys, path)
    assert code == 1
    assert document["findings"][0]["seq"] == first


def test_an_order_without_its_risk_decision_fails_coverage(
    goog: tuple[Path, BacktestResult], tmp_path: Path
) -> None:
    path = _copy(goog[0], tmp_path / "uncovered.sqlite")
    rows = _rows(path)
    decision = _nth(rows, "RiskDecision", 7)
    order_id = msgspec.json.decode(decision[3])["client_order_id"]
    _rechain(
        path, [(ts, kind, payload) for _, ts, kind, payload, _ in rows if payload != decision[3]]
    )
    report = audit_journal(path)
    assert set(report.counts) == {"coverage"}
    messages = [f.message for f in report.findings]
    assert f"submission of order {order_id} has no RiskDecision before it" in messages
    assert any(m.startswith("fill ") and order_id in m for m in messages)


def test_an_order_event_against_the_state_machine_is_named(
    goog: tuple[Path, BacktestResult], tmp_path: Path
) -> None:
    path = _copy(goog[0], tmp_path / "state.sqlite")
    rows = _rows(path)
    fill = _nth(rows, "OrderFilled", 3)
    accepted = next(r for r in rows if r[2] == "OrderAccepted" and r[0] < fill[0])
    events = [(ts, kind, payload) for _, ts, kind, payload, _ in rows]
    index = rows.index(fill)
    late = msgspec.json.decode(accepted[3])
    late["client_order_id"] = msgspec.json.decode(fill[3])["client_order_id"]
    events.insert(index + 1, (fill[1], "OrderAccepted", msgspec.json.encode(late)))
    _rechain(path, events)
    report = audit_journal(path)
    assert [(f.seq, f.check) for f in report.findings] == [(fill[0] + 1, "order_state")]
    assert "from filled to accepted" in report.findings[0].message


def test_a_journal_cut_before_run_completed_is_incomplete(
    goog: tuple[Path, BacktestResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(goog[0], tmp_path / "cut.sqlite")
    last = _rows(path)[-1][0]
    _execute(path, ("DELETE FROM events WHERE seq >= ?", (last - 1,)))
    report = audit_journal(path)
    # a cut tail leaves the chain intact: only the missing RunCompleted tells
    assert report.findings == [
        Finding(
            last - 2,
            "complete",
            f"the journal is incomplete: it ends at seq {last - 2} without RunCompleted",
        )
    ]
    assert main(["audit", "--journal", str(path)]) == 1
    assert "incomplete" in capsys.readouterr().out


def test_an_undecodable_payload_is_named_and_the_rest_still_audited(
    goog: tuple[Path, BacktestResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(goog[0], tmp_path / "garbled.sqlite")
    seq = _nth(_rows(path), "OrderFilled", 1)[0]
    _execute(path, ("UPDATE events SET payload = ? WHERE seq = ?", (b"{not json", seq)))
    report = audit_journal(path)
    assert {"chain", "decode"} <= _checks_at(report, seq)
    assert report.events == goog[1].journal_events  # read on past the garbled record
    assert "sequence" not in report.counts
    assert main(["audit", "--journal", str(path)]) == 1
    capsys.readouterr()


def test_a_journal_url_is_audited_like_its_path(
    goog: tuple[Path, BacktestResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--journal", f"sqlite:///{goog[0]}"]) == 0
    assert capsys.readouterr().out.startswith("clean")
    assert main(["audit", "--journal", f"sqlite:///{tmp_path / 'none.sqlite'}"]) == 2
    assert "no such journal" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()


def test_audit_takes_records_from_the_journal_api(goog: tuple[Path, BacktestResult]) -> None:
    journal = Journal(goog[0])
    try:
        report = audit(journal.records())
    finally:
        journal.close()
    assert report.clean


def test_an_empty_record_list_is_not_clean() -> None:
    report = audit([])
    assert report.findings == [Finding(None, "complete", "the journal is empty")]


# -- user errors ----------------------------------------------------------------------------
def test_a_missing_journal_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.sqlite"
    assert main(["audit", "--journal", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such journal" in err
    assert not missing.exists()  # auditing never creates a journal


def test_a_file_that_is_not_a_journal_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("not a database, just some notes\n" * 10)
    assert main(["audit", "--journal", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable journal" in err
