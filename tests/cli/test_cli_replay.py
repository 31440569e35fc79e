"""``predator replay`` on the real BTCUSDT spot capture: output keys, exit codes, user errors.

In-process ``main(argv)`` on the capture's first minute (a temp copy of its first lines)
for speed; one run of the installed console script proves the real exit code and stderr.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from predator.cli import main
from predator.ledger import Journal
from predator.testkit import shared_data_dir

SPOT_0808 = shared_data_dir() / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
CONSOLE_SCRIPT = Path(sys.executable).parent / "predator"
BACKTEST_KEYS = {
    "symbol",
    "bars",
    "initial_equity",
    "final_equity",
    "final_equity_exact",
    "return_pct",
    "buy_hold_pct",
    "trades",
    "win_rate_pct",
    "max_drawdown_pct",
    "exposure_pct",
    "fees",
    "fills",
    "orders",
    "rejections",
    "journal_digest",
    "journal_events",
    "journal",
    "strategies",
    "risk",
    "pnl",
    "postmortems",
}
"""Every key ``predator backtest --json`` prints."""
REPLAY_KEYS = {"events", "maker_fills", "taker_fills", "data_seconds", "equity_samples"}


@dataclass
class CliRun:
    code: int | str | None
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> CliRun:
    """``predator ARGV`` in-process; an exception escaping ``main`` fails the test."""
    try:
        code: int | str | None = main(list(argv))
    except SystemExit as exit_:  # argparse: --help, usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)


def assert_one_line_user_error(code: object, err: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("predator: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first minute of the spot capture (its depth snapshot is line 8)."""
    with gzip.open(SPOT_0808, "rb") as handle:
        lines = handle.read().splitlines(keepends=True)[:7_000]
    path = tmp_path_factory.mktemp("replay") / "spot_prefix.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"".join(lines))
    return path


def replay_args(capture: Path, *extra: str) -> list[str]:
    return ["replay", "--data", str(capture), "--strategy", "market_maker", *extra]


# -- output --------------------------------------------------------------------------------


def test_json_summary_has_the_backtest_keys_plus_fills_by_liquidity(
    capsys: pytest.CaptureFixture[str], capture: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "runs" / "mm.sqlite"
    result = run_cli(
        capsys, *replay_args(capture, "--commission", "0.001", "--journal", str(journal), "--json")
    )

    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary.keys() >= BACKTEST_KEYS | REPLAY_KEYS
    assert summary["symbol"] == "BTCUSDT" and summary["bars"] == 0
    assert summary["maker_fills"] > 0
    assert summary["fills"] == summary["maker_fills"] + summary["taker_fills"]
    assert isinstance(summary["rejections"], dict)
    assert summary["journal"] == str(journal)
    assert sorted(p.name for p in journal.parent.iterdir()) == ["mm.sqlite"]
    with Journal(journal) as stored:
        assert stored.digest == summary["journal_digest"]
    audit = run_cli(capsys, "audit", "--journal", str(journal))
    assert audit.code == 0 and audit.out.startswith("clean:")


def test_options_reach_the_run(capsys: pytest.CaptureFixture[str], capture: Path) -> None:
    base = json.loads(run_cli(capsys, *replay_args(capture, "--json")).out)
    varied = json.loads(
        run_cli(
            capsys,
            *replay_args(
                capture,
                "--latency",
                "lognormal:5,0.5,2",
                "--seed",
                "9",
                "--queue-model",
                "prob_power:3",
                "--maker-fee",
                "-0.0001",
                "--param",
                "half_spread_ticks=0",
                "--cash",
                "50000",
                "--json",
            ),
        ).out
    )

    assert varied["initial_equity"] == 50000.0
    assert varied["journal_digest"] != base["journal_digest"]
    assert varied["fees"] < 0  # a maker rebate
    assert varied["strategies"]["market_maker"]["orders_sent"] > 0


def test_human_summary_shows_fills_by_liquidity(
    capsys: pytest.CaptureFixture[str], capture: Path
) -> None:
    result = run_cli(capsys, *replay_args(capture))

    assert result.code == 0, result.err
    for label in ("Final equity", "Maker / taker fills", "Rejections", "Journal digest"):
        assert label in result.out
    assert "market_maker on BTCUSDT (7,000 L2 events" in result.out


# -- user errors: one line, exit 2, no journal -------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--latency", "fast"), "invalid latency 'fast'"),
        (("--queue-model", "fifo"), "invalid queue model 'fifo'"),
        (("--cash", "-5"), "cash must be > 0"),
        (("--maker-fee", "x"), "maker_fee must be a number"),
        (("--param", "size=0"), "size must be > 0"),
        (("--param", "spread=2"), "unknown parameter 'spread'"),
        (("--tick-size", "0.001"), "tick_size must be a number with at most 2 decimals"),
        (("--seed", "-1"), "--seed must be >= 0"),
    ],
)
def test_bad_options_are_one_line_and_leave_no_journal(
    capsys: pytest.CaptureFixture[str],
    capture: Path,
    tmp_path: Path,
    extra: tuple[str, ...],
    message: str,
) -> None:
    journal = tmp_path / "run.sqlite"
    result = run_cli(capsys, *replay_args(capture, *extra, "--journal", str(journal)))

    assert message in assert_one_line_user_error(result.code, result.err)
    assert result.out == ""
    assert list(tmp_path.iterdir()) == []


def test_unknown_strategy_suggests_the_market_maker(
    capsys: pytest.CaptureFixture[str], capture: Path
) -> None:
    result = run_cli(capsys, "replay", "--data", str(capture), "--strategy", "market_makr")

    assert "did you mean 'market_maker'?" in assert_one_line_user_error(result.code, result.err)


def test_data_that_is_no_capture_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    goog = shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv"
    for data, message in ((goog, "GOOG"), (tmp_path / "missing.jsonl.gz", "no such file")):
        result = run_cli(capsys, "replay", "--data", str(data), "--strategy", "market_maker")
        assert message in assert_one_line_user_error(result.code, result.err)


def test_a_capture_cut_short_fails_with_its_line_and_leaves_no_journal(
    capsys: pytest.CaptureFixture[str], capture: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(capture.read_bytes()[: capture.stat().st_size // 2])
    journal = tmp_path / "run.sqlite"

    result = run_cli(capsys, *replay_args(cut, "--journal", str(journal)))

    assert str(cut) in assert_one_line_user_error(result.code, result.err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.jsonl.gz"]


def test_console_script_exit_codes(capture: Path, tmp_path: Path) -> None:
    ok = subprocess.run(
        [str(CONSOLE_SCRIPT), *replay_args(capture, "--json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    bad = subprocess.run(
        [str(CONSOLE_SCRIPT), *replay_args(capture, "--latency", "soon")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout).keys() >= BACKTEST_KEYS | REPLAY_KEYS
    assert "invalid latency" in assert_one_line_user_error(bad.returncode, bad.stderr)
