"""``predator backtest`` on real data: output keys, the one-line user errors, the README.

Most cases call ``predator.cli.main(argv)`` in-process (fast; an escaping exception is the
traceback a user would see). A few run the installed console script in a subprocess to
prove the real exit code and stderr.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from predator import __version__
from predator.cli import main
from predator.ledger import Journal
from predator.testkit import shared_data_dir

REPO_ROOT = Path(__file__).parents[2]
README = REPO_ROOT / "README.md"
GOOG = shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv"
CONSOLE_SCRIPT = Path(sys.executable).parent / "predator"

JSON_KEYS = {
    "final_equity",
    "return_pct",
    "buy_hold_pct",
    "trades",
    "win_rate_pct",
    "max_drawdown_pct",
    "fees",
    "journal_digest",
}


@dataclass
class CliRun:
    code: int | str | None
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> CliRun:
    """``predator ARGV`` in-process; an exception escaping ``main`` fails the test."""
    try:
        code: int | str | None = main(list(argv))
    except SystemExit as exit_:  # argparse: --version, --help, usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)


def run_console_script(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *argv], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def assert_one_line_user_error(code: object, err: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("predator: error: ")
    return lines[0]


def assert_no_journal(journal: Path) -> None:
    assert sorted(journal.parent.glob(journal.name + "*")) == []


# -- bad data files -----------------------------------------------------------------------


def goog_rows() -> list[list[str]]:
    with open(GOOG, newline="") as handle:
        return list(csv.reader(handle))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def truncated_goog(tmp_path: Path) -> tuple[Path, int, str]:
    """GOOG with its last line cut in half: (path, that line's number, first missing column)."""
    text = GOOG.read_text()
    lines = text.splitlines()
    last = lines[-1]
    half = last[: len(last) // 2]
    path = tmp_path / "goog_truncated.csv"
    path.write_text("\n".join([*lines[:-1], half]))
    header = lines[0].split(",")
    return path, len(lines), header[len(half.split(","))]


def test_truncated_csv_is_one_line_naming_file_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, truncated_goog: tuple[Path, int, str]
) -> None:
    path, line, column = truncated_goog
    journal = tmp_path / "out" / "run.sqlite"

    result = run_cli(
        capsys,
        "backtest",
        "--data",
        str(path),
        "--strategy",
        "sma_cross",
        "--journal",
        str(journal),
    )

    message = assert_one_line_user_error(result.code, result.err)
    assert f"{path}:{line}: column '{column}'" in message
    assert "expected 6 fields" in message
    assert result.out == ""
    assert_no_journal(journal)


def test_missing_close_column_is_one_line_naming_file_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "goog_no_close.csv", [r[:4] + r[5:] for r in goog_rows()])
    journal = tmp_path / "run.sqlite"

    result = run_cli(
        capsys,
        "backtest",
        "--data",
        str(path),
        "--strategy",
        "sma_cross",
        "--journal",
        str(journal),
    )

    message = assert_one_line_user_error(result.code, result.err)
    assert f"{path}:1: column 'close': expected a 'close' column" in message
    assert_no_journal(journal)


def test_non_numeric_price_is_one_line_naming_file_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = goog_rows()
    rows[100][2] = "12O.5"  # letter O for zero, in the High column of line 101
    path = write_rows(tmp_path / "goog_bad_price.csv", rows)
    journal = tmp_path / "run.sqlite"

    result = run_cli(
        capsys,
        "backtest",
        "--data",
        str(path),
        "--strategy",
        "sma_cross",
        "--journal",
        str(journal),
    )

    message = assert_one_line_user_error(result.code, result.err)
    assert f"{path}:101: column 'High'" in message
    assert "'12O.5'" in message
    assert_no_journal(journal)


def test_missing_data_file_is_one_line_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.csv"
    journal = tmp_path / "run.sqlite"

    result = run_cli(
        capsys,
        "backtest",
        "--data",
        str(missing),
        "--strategy",
        "sma_cross",
        "--journal",
        str(journal),
    )

    message = assert_one_line_user_error(result.code, result.err)
    assert str(missing) in message
    assert "no such file" in message
    assert_no_journal(journal)


# -- bad options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--strategy", "smacross"], "unknown strategy 'smacross'; did you mean 'sma_cross'?"),
        (
            ["--strategy", "sma_cross", "--param", "fsat=5"],
            "unknown parameter 'fsat' for strategy 'sma_cross'; did you mean 'fast'?",
        ),
        (
            ["--strategy", "sma_cross", "--param", "fast=abc"],
            "parameter 'fast' of strategy 'sma_cross' expects int, got 'abc'",
        ),
        (["--strategy", "sma_cross", "--param", "fast"], "--param expects key=value, got 'fast'"),
        (["--strategy", "sma_cross", "--param", "=5"], "--param expects key=value, got '=5'"),
        (["--strategy", "sma_cross", "--cash", "-100"], "cash must be > 0, got -100"),
        (["--strategy", "sma_cross", "--sizing", "half"], "invalid sizing 'half'"),
        (["--strategy", "sma_cross", "--sizing", "fraction:1.5"], "invalid sizing 'fraction:1.5'"),
        (["--strategy", "sma_cross", "--commission", "abc"], "commission must be a number"),
        (["--strategy", "sma_cross", "--size-precision", "13"], "--size-precision must be"),
    ],
)
def test_bad_option_is_one_line_error_with_exit_code_2_and_no_journal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, options: list[str], expected: str
) -> None:
    journal = tmp_path / "run.sqlite"

    result = run_cli(capsys, "backtest", "--data", str(GOOG), *options, "--journal", str(journal))

    message = assert_one_line_user_error(result.code, result.err)
    assert expected in message
    assert_no_journal(journal)


@pytest.mark.parametrize("strategy", ["sma_cross", "ema_cross"])
def test_fast_not_below_slow_is_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, strategy: str
) -> None:
    journal = tmp_path / "run.sqlite"

    result = run_cli(
        capsys,
        "backtest",
        "--data",
        str(GOOG),
        "--strategy",
        strategy,
        "--param",
        "fast=30",
        "--param",
        "slow=10",
        "--journal",
        str(journal),
    )

    message = assert_one_line_user_error(result.code, result.err)
    assert "fast" in message
    assert_no_journal(journal)


def test_nan_sizing_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = run_cli(
        capsys, "backtest", "--data", str(GOOG), "--strategy", "sma_cross", "--sizing", "units:nan"
    )

    message = assert_one_line_user_error(result.code, result.err)
    assert "invalid sizing" in message


# -- successful runs ----------------------------------------------------------------------


def test_json_output_has_the_documented_keys_and_oracle_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli(capsys, "backtest", "--data", str(GOOG), "--strategy", "sma_cross", "--json")

    assert result.code == 0
    assert result.err == ""
    summary = json.loads(result.out)
    assert summary.keys() >= JSON_KEYS
    # backtesting.py 0.6.6 on GOOG, SmaCross(10, 30): 51422.99, 66 trades
    assert summary["final_equity"] == 51422.99
    assert summary["trades"] == 66
    assert summary["return_pct"] == 414.23
    assert summary["buy_hold_pct"] == 522.06
    assert summary["win_rate_pct"] == 46.97
    assert summary["max_drawdown_pct"] == -47.98
    assert summary["fees"] == 0.0
    assert re.fullmatch(r"[0-9a-f]{32}", summary["journal_digest"])


def test_human_summary_prints_the_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys, "backtest", "--data", str(GOOG), "--strategy", "sma_cross", "--commission", "0.002"
    )

    assert result.code == 0
    for label in (
        "Final equity",
        "Return",
        "Buy & hold",
        "Trades",
        "Win rate",
        "Max drawdown",
        "Fees",
        "Journal digest",
    ):
        assert label in result.out
    assert "sma_cross on GOOG (2148 bars)" in result.out


def test_journal_option_writes_the_journal_with_the_printed_digest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journal = tmp_path / "runs" / "goog.sqlite"

    result = run_cli(
        capsys,
        "backtest",
        "--data",
        str(GOOG),
        "--strategy",
        "ema_cross",
        "--json",
        "--journal",
        str(journal),
    )

    summary = json.loads(result.out)
    assert summary["journal"] == str(journal)
    assert sorted(p.name for p in journal.parent.iterdir()) == ["goog.sqlite"]
    with Journal(journal) as stored:
        assert stored.digest == summary["journal_digest"]


# -- the real console script ---------------------------------------------------------------


def test_console_script_prints_json_summary() -> None:
    completed = run_console_script(
        "backtest", "--data", str(GOOG), "--strategy", "sma_cross", "--json"
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout).keys() >= JSON_KEYS


def test_console_script_data_error_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, truncated_goog: tuple[Path, int, str]
) -> None:
    path, line, _ = truncated_goog
    journal = tmp_path / "run.sqlite"

    completed = run_console_script(
        "backtest", "--data", str(path), "--strategy", "sma_cross", "--journal", str(journal)
    )

    message = assert_one_line_user_error(completed.returncode, completed.stderr)
    assert f"{path}:{line}" in message
    assert completed.stdout == ""
    assert_no_journal(journal)


def test_console_script_option_error_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "run.sqlite"

    completed = run_console_script(
        "backtest",
        "--data",
        str(GOOG),
        "--strategy",
        "sma_cross",
        "--cash",
        "-5",
        "--journal",
        str(journal),
    )

    assert "cash must be > 0" in assert_one_line_user_error(completed.returncode, completed.stderr)
    assert_no_journal(journal)


def test_console_script_version() -> None:
    completed = run_console_script("--version")

    assert completed.returncode == 0
    assert completed.stdout.strip() == f"predator {__version__}"


# -- the README's commands ----------------------------------------------------------------


def readme_items(text: str) -> list[tuple[str, str]]:
    """In order: ("command", ``predator ...`` line of a ```sh block, continuations joined)
    and ("json", body of a ```json block)."""
    items: list[tuple[str, str]] = []
    fence: str | None = None
    body: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            if fence is None:
                fence, body, pending = line[3:].strip(), [], ""
            else:
                if fence == "json":
                    items.append(("json", "\n".join(body)))
                fence = None
            continue
        if fence == "json":
            body.append(line)
        if fence not in ("sh", "shell", "bash", "console"):
            continue
        if pending:
            line = pending + " " + line
            pending = ""
        elif line.startswith("$ "):
            line = line[2:].lstrip()
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        if line.startswith("predator "):
            items.append(("command", line))
    return items


def readme_commands(text: str) -> list[str]:
    return [body for kind, body in readme_items(text) if kind == "command"]


def test_readme_parser_finds_sh_commands_and_json_blocks_in_order() -> None:
    text = (
        "```sh\npredator backtest --data a.csv \\\n  --strategy sma_cross\n$ predator --version\n"
        'make demo\n```\n```json\n{"trades": 3}\n```\n```text\npredator not-a-command\n```\n'
        "predator outside\n"
    )

    assert readme_items(text) == [
        ("command", "predator backtest --data a.csv --strategy sma_cross"),
        ("command", "predator --version"),
        ("json", '{"trades": 3}'),
    ]


def readme_or_skip() -> str:
    if not README.exists():
        pytest.skip("README.md not written yet")
    return README.read_text()


def test_readme_shows_a_predator_backtest_command() -> None:
    commands = readme_commands(readme_or_skip())

    assert any(c.startswith("predator backtest ") for c in commands), (
        "README.md shows no `predator backtest` command in a ```sh block"
    )


def _localise(argv: list[str], tmp_path: Path) -> list[str] | None:
    """Resolve data/strategy paths against the repo root and send journals to tmp_path.

    ``None`` when a data file the command names does not exist.
    """
    out: list[str] = []
    option = None
    for arg in argv:
        value = arg
        if option == "--data":
            path = Path(arg) if Path(arg).is_absolute() else REPO_ROOT / arg
            if not path.exists():
                return None
            value = str(path)
        elif option == "--strategy" and arg.split(":")[0].endswith(".py"):
            value = str(REPO_ROOT / arg) if not Path(arg).is_absolute() else arg
        elif option == "--journal":
            value = str(tmp_path / Path(arg).name)
        out.append(value)
        option = arg if arg.startswith("--") else None
    return out


_SHOWN_VALUE = re.compile(r'"(\w+)"\s*:\s*(-?\d+(?:\.\d+)?|"[^"…]*"|null|true|false)?')


def test_readme_commands_exit_0_and_shown_output_matches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ran = []
    last_summary: dict[str, object] | None = None
    for kind, body in readme_items(readme_or_skip()):
        if kind == "json":
            # An output example shows the keys (and values) of the command before it.
            assert last_summary is not None, (
                f"README shows JSON output of no --json command: {body}"
            )
            for key, shown in _SHOWN_VALUE.findall(body):
                assert key in last_summary, f"README shows output key {key!r} that is not printed"
                if shown and shown[0] in "-0123456789":
                    assert last_summary[key] == json.loads(shown), f"README shows {key}: {shown}"
            continue
        argv = _localise(shlex.split(body, comments=True)[1:], tmp_path)
        if argv is None:
            last_summary = None
            continue
        result = run_cli(capsys, *argv)
        assert result.code in (0, None), f"{body!r} exited {result.code}: {result.err}"
        last_summary = json.loads(result.out) if "--json" in argv else None
        if last_summary is not None:
            assert last_summary.keys() >= JSON_KEYS, body
        ran.append(body)

    assert ran, "no README `predator` command names a data file that exists"
