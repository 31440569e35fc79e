"""Post-mortems of real runs: the flood strategy's breaker and kill switch, GOOG's drawdown.

Each halt in the journal gets a report with its chain of reasons, timeline, state before
and after, and what resumed trading; ``predator postmortem`` writes them with an index.
"""

from __future__ import annotations

import gzip
import json
import tomllib
from pathlib import Path

import pytest

from predator.cli import main
from predator.ledger.journal import JournalRecord
from predator.market import load_bars
from predator.node import Backtest, BacktestConfig, StrategySpec
from predator.testkit import shared_data_dir
from predator.validation import (
    PostMortem,
    build_postmortem,
    find_incidents,
    read_journal,
    write_postmortems,
)
from predator.validation.postmortem import STILL_HALTED

REPO = Path(__file__).resolve().parents[2]
BTC = shared_data_dir() / "binanceus_BTCUSDT_1m_20230301_20230321.csv.gz"
GOOG = shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv"
BARS = 3_000


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Journal of sma_cross + flood on the first 3,000 BTCUSDT minutes: flood trips."""
    folder = tmp_path_factory.mktemp("flood")
    data = folder / BTC.name
    with gzip.open(BTC, "rt") as source, gzip.open(data, "wt") as target:
        for number, line in enumerate(source):
            if number > BARS:
                break
            target.write(line)
    journal = folder / "flood.sqlite"
    config = BacktestConfig(
        strategies=(
            StrategySpec(strategy="sma_cross", allocation="0.5"),
            StrategySpec(strategy="flood", allocation="0.5"),
        ),
        cash="200000",
        sizing="fraction:0.95",
        journal=str(journal),
    )
    Backtest(load_bars(data, size_precision=5), config).run()
    return journal


@pytest.fixture(scope="module")
def goog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Journal of GOOG daily with the example risk config: the drawdown kill switch trips."""
    journal = tmp_path_factory.mktemp("goog") / "goog.sqlite"
    with open(REPO / "docs" / "risk.example.toml", "rb") as handle:
        risk = tomllib.load(handle)
    Backtest(load_bars(GOOG), BacktestConfig(risk=risk, journal=str(journal))).run()
    return journal


def _kill_switch_postmortem(records: list[JournalRecord]) -> PostMortem:
    trips = [i for i in find_incidents(records) if i.type == "KillSwitchTripped"]
    assert len(trips) == 1
    return build_postmortem(records, trips[0])


def test_flood_breaker_openings_and_kill_switch_are_incidents(flood: Path) -> None:
    incidents = find_incidents(read_journal(flood))
    openings = [i for i in incidents if i.type == "BreakerStateChanged"]
    assert {i.scope for i in openings} == {"strategy:flood", "engine:flood"}
    assert sum(i.scope == "strategy:flood" for i in openings) == 3
    (trip,) = [i for i in incidents if i.type == "KillSwitchTripped"]
    assert (trip.scope, trip.trigger, trip.actor) == ("strategy:flood", "breaker_trips", "risk")
    assert trip.time.startswith("2023-03-01T")
    assert [i.seq for i in incidents] == sorted(i.seq for i in incidents)


def test_flood_kill_switch_reasons_name_breaker_trips_and_rate_limit_denials(
    flood: Path,
) -> None:
    report = _kill_switch_postmortem(read_journal(flood))
    first, *causes = report.reasons
    assert first.type == "KillSwitchTripped" and "breaker_trips" in first.text
    trips = [r for r in causes if r.type == "BreakerStateChanged" and "strategy:flood" in r.text]
    assert len(trips) == 3
    assert all(r.seq is not None and r.seq < report.incident.seq for r in trips)
    (rate_limit,) = [r for r in causes if r.type == "RiskDecision" and "rate_limit" in r.text]
    assert rate_limit.count > 1 and "over 30 orders/min" in rate_limit.text
    assert all("sma_cross" not in r.text for r in causes)


def test_flood_kill_switch_is_still_halted_and_its_report_shows_the_timeline(
    flood: Path,
) -> None:
    report = _kill_switch_postmortem(read_journal(flood))
    assert report.resumed.seq is None and report.resumed.text == STILL_HALTED
    seqs = [entry.seq for entry in report.timeline]
    assert seqs == list(range(report.incident.seq - 20, report.incident.seq + 21))
    assert report.state_before.kill_switches == ()
    assert [t.scope for t in report.state_after.kill_switches] == ["strategy:flood"]
    markdown = report.to_markdown()
    assert "## Timeline" in markdown and STILL_HALTED in markdown
    assert f">> {report.incident.seq:>7}" in markdown
    assert "DENIED by rate_limit" in markdown
    document = json.loads(json.dumps(report.to_json()))
    assert document["incident"]["trigger"] == "breaker_trips"
    assert len(document["timeline"]) == 41


def test_flood_breaker_opening_is_resumed_by_the_breaker_closing(flood: Path) -> None:
    records = read_journal(flood)
    first = next(i for i in find_incidents(records) if i.type == "BreakerStateChanged")
    report = build_postmortem(records, first, window=5)
    assert report.resumed.type == "BreakerStateChanged"
    assert report.resumed.seq is not None and report.resumed.seq > first.seq
    assert "half-open" in report.resumed.text
    assert len(report.timeline) == 11


def test_goog_drawdown_kill_switch_stops_the_strategy_with_the_position_open(
    goog: Path,
) -> None:
    report = _kill_switch_postmortem(read_journal(goog))
    assert (report.incident.scope, report.incident.trigger) == ("global", "loss_from_peak")
    assert "below its peak" in report.incident.reason
    before, after = report.state_before, report.state_after
    assert before.last_seq == report.incident.seq - 1
    assert before.position("GOOG") != 0
    assert before.stopped_strategies == {} and before.kill_switches == ()
    assert after.stopped_strategies == {"sma_cross": "kill switch global"}
    assert [t.trigger for t in after.kill_switches] == ["loss_from_peak"]
    assert report.resumed.text == STILL_HALTED
    state_json = report.to_json()["state_before"]
    assert state_json["pools"]["main"]["positions"]["GOOG"]["quantity"] != "0"


def test_write_postmortems_writes_markdown_json_and_index(goog: Path, tmp_path: Path) -> None:
    records = read_journal(goog)
    paths = write_postmortems(records, tmp_path / "reports")
    incidents = find_incidents(records)
    assert len(paths) == 2 * len(incidents) + 1 and paths[-1].name == "index.md"
    trip = next(i for i in incidents if i.type == "KillSwitchTripped")
    document = json.loads((tmp_path / "reports" / f"{trip.seq}-KillSwitchTripped.json").read_text())
    assert document["incident"]["seq"] == trip.seq
    assert f"{trip.seq}-KillSwitchTripped.md" in paths[-1].read_text()


def test_cli_postmortem_writes_reports_and_prints_one_line_per_incident(
    flood: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pm"
    assert main(["postmortem", "--journal", str(flood), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    incidents = find_incidents(read_journal(flood))
    assert len(lines) == len(incidents) + 1
    assert any(line.startswith(f"#{incidents[-1].seq} KillSwitchTripped") for line in lines)
    index = (out / "index.md").read_text()
    for incident in incidents:
        assert (out / f"{incident.seq}-{incident.type}.md").is_file()
        assert (out / f"{incident.seq}-{incident.type}.json").is_file()
        assert f"{incident.seq}-{incident.type}.md" in index
    assert main(["postmortem", "--journal", str(flood), "--out", str(out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [i["seq"] for i in document["incidents"]] == [i.seq for i in incidents]


def test_cli_postmortem_of_a_missing_journal_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.sqlite"
    assert main(["postmortem", "--journal", str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such journal" in err
    assert not missing.exists() and not (tmp_path / "o").exists()
