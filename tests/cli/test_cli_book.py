"""``predator book check``: exit codes, JSON keys and one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from predator.cli import main
from predator.testkit import shared_data_dir

DATA = shared_data_dir()
SPOT_0808 = DATA / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
SPOT_0809 = DATA / "hftbacktest_binance_spot_btcusdt_20240809.jsonl.gz"
CONSOLE_SCRIPT = Path(sys.executable).parent / "predator"


def test_json_report_on_spot_0808(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["book", "check", str(SPOT_0808), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"checks", "mismatches", "gaps", "msgs_per_s", "messages", "files"} <= set(report)
    assert (report["checks"], report["mismatches"], report["gaps"]) == (3449, 0, 0)
    assert report["messages"] == 41249 and report["first_mismatch"] is None
    assert report["msgs_per_s"] > 0


def test_mismatches_exit_1_and_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["book", "check", str(SPOT_0808), str(SPOT_0809)]) == 1
    out = capsys.readouterr().out
    assert "mismatches" in out and "checks" in out
    assert f"mismatch {SPOT_0809}:12880 update 50093478174" in out


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    lobster = DATA / "lobster_AAPL_2012-06-21_first998_message_10.csv"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("1 {}\n")
    cases = [
        ([str(tmp_path / "missing.jsonl.gz")], "expected a readable file"),
        ([str(lobster)], "a lobster-message file has no bookTicker stream"),
        ([str(bad)], "bad.jsonl:1: expected a depth snapshot"),
    ]
    for files, needle in cases:
        done = subprocess.run(
            [str(CONSOLE_SCRIPT), "book", "check", *files],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("predator: error: ")
        assert needle in lines[0]
