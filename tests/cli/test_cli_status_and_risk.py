"""The risk-facing CLI: several strategies, a risk config file, and ``predator status``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from predator.cli import main
from predator.testkit import shared_data_dir

REPO = Path(__file__).resolve().parents[2]
GOOG = str(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_json_reports_strategies_and_risk_sections(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["backtest", "--data", GOOG, "--strategy", "sma_cross", "--json"])
    strategies = out["strategies"]
    assert isinstance(strategies, dict)
    assert set(strategies["sma_cross"]) >= {"state", "trades", "orders_rejected", "breaker"}
    risk = out["risk"]
    assert isinstance(risk, dict)
    assert set(risk) >= {"rejections_by_reason", "breaker_trips", "kill_switch_trips"}
    assert risk["profile"] == "backtest"


def test_params_can_target_one_of_several_strategies(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["backtest", "--data", GOOG, "--strategy", "sma_cross", "--strategy", "ema_cross"]
    argv += ["--param", "sma_cross.fast=5", "--param", "slow=40", "--json"]
    argv += ["--allocation", "sma_cross=0.25"]
    out = _json(capsys, argv)
    strategies = out["strategies"]
    assert isinstance(strategies, dict)
    assert strategies["sma_cross"]["capital"] == "2500.00"
    assert strategies["ema_cross"]["capital"] == "7500.00"


def test_the_example_risk_config_runs_the_full_profile_and_explains_its_halt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "run.sqlite"
    argv = ["backtest", "--data", GOOG, "--strategy", "sma_cross", "--json"]
    argv += ["--risk-config", str(REPO / "docs" / "risk.example.toml"), "--journal", str(journal)]
    out = _json(capsys, argv)
    risk = out["risk"]
    assert isinstance(risk, dict)
    assert risk["profile"] == "configured"
    # GOOG falls more than 20 % from an equity peak in 2005: the kill switch trips
    assert risk["kill_switch_trips"] == 1
    status = _json(capsys, ["status", "--journal", str(journal), "--json"])
    assert status["complete"] is True
    assert status["kill_switches_tripped"] == ["global"]
    halts = status["halts"]
    assert isinstance(halts, list)
    trip = next(h for h in halts if h["type"] == "KillSwitchTripped")
    assert trip["trigger"] == "loss_from_peak"
    assert "below its peak" in trip["reason"]


def test_an_invalid_risk_config_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "risk.toml"
    config.write_text('[limits]\nprice_band = "1.5"\n')
    code = main(
        ["backtest", "--data", GOOG, "--strategy", "sma_cross", "--risk-config", str(config)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "limits.price_band" in err and "risk.toml" in err


def test_status_of_a_missing_journal_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--journal", str(tmp_path / "none.sqlite")]) == 2
    assert "no such journal" in capsys.readouterr().err
