"""``predator campaign``: exit codes, JSON, replay and sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from predator.cli import main

HERE = Path(__file__).resolve().parent
SHORT_CHAOS = str(HERE / "short_chaos.toml")


def test_a_passing_campaign_exits_0_and_prints_the_json_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["campaign", "--days", "3", "--chaos", SHORT_CHAOS, "--seed", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "PASS"
    assert {"verdict", "seed", "days", "chaos", "metrics", "scenarios", "journal_digest"} <= set(
        report
    )


def test_a_failing_campaign_exits_1_and_prints_how_to_reproduce_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The campaign's own final check finds the books off the venue: state_consistent fails.
    import predator.campaign.campaign as campaign

    monkeypatch.setattr(campaign, "final_check", lambda _kernel: ["pool x: cash 1 here, 2 there"])
    argv = ["campaign", "--days", "2", "--chaos", SHORT_CHAOS, "--seed", "1"]
    assert main(argv) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "FAIL state_consistent" in out and "pool x: cash 1 here, 2 there" in out
    assert (
        f"seed 1; reproduce: predator campaign --days 2 --chaos {SHORT_CHAOS} --seed 1 "
        "--out campaign-seed-1" in out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--days", "0"], "--days must be"),
        (["--chaos", "brutal"], "--chaos expects one of"),
        (["--data", "/no/such/file.csv"], "no such data file"),
        (["--seeds", "5..1"], "--seeds"),
        (["--replay", "--seeds", "1..2"], "--replay re-runs one seed"),
        (["--replay"], "--replay re-runs a recorded campaign: give --out DIR"),
        (["--replay", "--out", "/no/such/dir"], "no recorded campaign to replay"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["campaign", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_replay_reruns_the_recorded_campaign_to_the_same_journal_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "run")
    argv = ["campaign", "--days", "2", "--chaos", "heavy", "--seed", "4", "--out", out, "--json"]
    first_code = main(argv)
    first = json.loads(capsys.readouterr().out)
    code = main(["campaign", "--out", out, "--replay", "--json"])  # the config comes from it
    replay = json.loads(capsys.readouterr().out)
    assert code == first_code
    assert replay["replay"] == {"expected_digest": first["journal_digest"], "same": True}
    assert replay["seed"] == 4 and replay["days"] == 2


def test_a_sweep_runs_seeds_on_a_process_pool_and_lists_the_failing_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["campaign", "--days", "1", "--chaos", "medium", "--seeds", "1..3", "--workers", "2"]
    code = main([*argv, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == 3 and report["workers"] == 2
    assert report["wall_s"] > 0 and report["seeds_per_s"] > 0
    assert [o["seed"] for o in report["outcomes"]] == [1, 2, 3]
    assert code == (1 if report["failed"] else 0)
    for failed in report["failed"]:
        assert failed["reproduce"].startswith(
            f"predator campaign --days 1 --chaos medium --seed {failed['seed']}"
        )
