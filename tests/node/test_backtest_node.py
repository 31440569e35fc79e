"""The Backtest node on real GOOG bars: determinism, the journal's life cycle, config errors."""

from __future__ import annotations

import textwrap
from functools import cache
from pathlib import Path

import pytest

from predator.ledger import Journal
from predator.market import BarFeed, load_bars
from predator.node import Backtest, BacktestConfig, BacktestError, BacktestResult
from predator.testkit import shared_data_dir

GOOG = "backtesting_py_GOOG_daily_2004-2013.csv"


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / GOOG)


def run(**config: object) -> BacktestResult:
    return Backtest(goog(), BacktestConfig(**config)).run()  # type: ignore[arg-type]


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- determinism --------------------------------------------------------------------------


def test_two_runs_of_the_same_config_have_the_same_journal_digest() -> None:
    first = run(params={"fast": 10, "slow": 30}, commission="0.002")
    second = run(params={"fast": 10, "slow": 30}, commission="0.002")

    assert first.journal_digest == second.journal_digest
    assert first.journal_events == second.journal_events > 0
    assert first.final_equity == second.final_equity


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"fast": 10, "slow": 20}},
        {"commission": "0.001"},
        {"cash": "20000"},
        {"strategy": "ema_cross", "params": {}},
    ],
)
def test_a_different_config_gives_a_different_journal_digest(change: dict[str, object]) -> None:
    base: dict[str, object] = {"params": {"fast": 10, "slow": 30}}

    assert run(**{**base, **change}).journal_digest != run(**base).journal_digest


def test_journal_digest_does_not_depend_on_the_journal_location(tmp_path: Path) -> None:
    in_memory = run()
    on_disk = run(journal=str(tmp_path / "run.sqlite"))

    assert on_disk.journal_digest == in_memory.journal_digest


# -- the journal file ---------------------------------------------------------------------


def test_successful_run_leaves_exactly_the_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "goog.sqlite"

    result = run(journal=str(path))

    assert result.journal_path == str(path)
    assert files_in(path.parent) == ["goog.sqlite"]


def test_journal_starts_with_run_started_and_ends_with_run_completed(tmp_path: Path) -> None:
    path = tmp_path / "goog.sqlite"
    result = run(journal=str(path), params={"fast": 10, "slow": 30})

    with Journal(path) as journal:
        records = list(journal.records())
        digest = journal.digest

    assert records[0].type == "RunStarted"
    assert records[-1].type == "RunCompleted"
    assert [r.type for r in records].count("RunStarted") == 1
    assert [r.type for r in records].count("RunCompleted") == 1
    assert len(records) == result.journal_events
    assert digest == result.journal_digest
    started, completed = records[0].payload, records[-1].payload
    assert started["bars"] == len(goog())
    (recorded,) = started["config"]["strategies"]
    assert recorded["params"] == {"fast": 10, "slow": 30}
    assert recorded["strategy"] == "sma_cross"
    assert started["config"]["journal"] is None  # where it is written is not part of the run
    assert completed["trades"] == result.trades == 66
    assert completed["fills"] == result.fills


def test_a_raising_strategy_is_stopped_and_journaled_while_the_run_completes(
    tmp_path: Path,
) -> None:
    strategy = tmp_path / "exploding.py"
    strategy.write_text(
        textwrap.dedent(
            """
            from predator.strategy import Strategy

            class Exploding(Strategy):
                def on_start(self):
                    self.bars = 0

                def on_bar(self, bar):
                    self.bars += 1
                    if self.bars == 1500:
                        raise RuntimeError("boom on bar 1500")
                    if not self.position:
                        self.buy()
            """
        )
    )
    path = tmp_path / "run.sqlite"
    result = run(strategy=str(strategy), journal=str(path))

    (report,) = result.strategies.values()
    assert report["state"] == "stopped"
    assert "RuntimeError" in report["stopped_reason"]
    journal = Journal(path)
    failures = [r for r in journal.records() if r.type == "StrategyFailed"]
    journal.close()
    assert len(failures) == 1
    assert failures[0].payload["error"] == "RuntimeError: boom on bar 1500"
    assert failures[0].payload["where"] == "on_bar"


def test_a_kernel_fault_propagates_and_leaves_no_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from predator.ledger import BalanceEquationViolated
    from predator.portfolio import Portfolio

    calls = {"n": 0}
    original = Portfolio.check_balance_equation

    def failing(self: Portfolio) -> None:
        calls["n"] += 1
        if calls["n"] == 100:
            raise BalanceEquationViolated("injected", 0, 1)
        original(self)

    monkeypatch.setattr(Portfolio, "check_balance_equation", failing)
    journal_dir = tmp_path / "journals"
    with pytest.raises(BaseException, match="injected"):
        run(params={"fast": 10, "slow": 30}, journal=str(journal_dir / "run.sqlite"))

    assert files_in(journal_dir) == []


def test_failed_run_keeps_an_earlier_journal_untouched_and_leaves_no_partial(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    good = run(journal=str(path))

    with pytest.raises(BacktestError):
        run(journal=str(path), cash="-1")

    assert files_in(tmp_path) == ["run.sqlite"]
    with Journal(path) as journal:
        assert journal.digest == good.journal_digest


# -- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cash": "-1"}, "cash must be > 0, got -1"),
        ({"cash": "0"}, "cash must be > 0, got 0"),
        ({"cash": "lots"}, "cash must be a number, got 'lots'"),
        ({"cash": "inf"}, "cash must be a finite number"),
        ({"cash": "0.000000001"}, "cash 0.000000001 has more than 8 decimals"),
        ({"sizing": "everything"}, "invalid sizing 'everything'"),
        ({"sizing": "fraction:2"}, "invalid sizing 'fraction:2'"),
        ({"fill": "next-close"}, "fill must be one of next-open, close, got 'next-close'"),
        ({"commission": "abc"}, "commission must be a number, got 'abc'"),
        ({"commission": "0.5"}, "commission rate must be within [-0.1, 0.1)"),
        ({"commission_fixed": "-1"}, "commission_fixed must be >= 0, got -1"),
        ({"spread_bps": "x"}, "spread_bps must be a number"),
        ({"slippage_bps": "-2"}, "slippage_bps must be >= 0"),
    ],
)
def test_invalid_config_raises_backtest_error_and_leaves_no_journal(
    tmp_path: Path, config: dict[str, object], message: str
) -> None:
    with pytest.raises(BacktestError) as excinfo:
        run(journal=str(tmp_path / "run.sqlite"), **config)

    assert message in str(excinfo.value)
    assert files_in(tmp_path) == []


# -- fills ---------------------------------------------------------------------------------


def test_trade_on_close_fills_at_the_signal_bars_close_not_the_next_open() -> None:
    feed = goog()
    index = {ts: i for i, ts in enumerate(feed.timestamps())}
    closes = feed.closes()

    next_open = run()
    on_close = run(fill="close")

    assert on_close.final_equity != next_open.final_equity
    assert on_close.journal_digest != next_open.journal_digest
    open_entries = [index[t.entry_ts] for t in next_open.trades_list]
    close_entries = [index[t.entry_ts] for t in on_close.trades_list]
    assert close_entries == [i - 1 for i in open_entries]  # same signals, one bar earlier
    assert all(t.entry_price == closes[index[t.entry_ts]] for t in on_close.trades_list)


def test_commission_is_charged_and_lowers_final_equity() -> None:
    free = run()
    charged = run(commission="0.002")

    assert charged.performance.fees > 0 == free.performance.fees
    assert charged.final_equity < free.final_equity


def test_live_mode_checks_invariants_on_a_timer_and_still_catches_a_broken_ledger() -> None:
    from predator.ledger.ledger import BalanceEquationViolated
    from predator.node.backtest import _announce_run, _build_kernel

    feed = load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")
    config = BacktestConfig(params={"fast": 10, "slow": 30})
    month = 30 * 86_400 * 1_000_000_000
    kernel = _build_kernel(feed, config, Journal(None), invariant_interval_ns=month)
    _announce_run(kernel, feed, config, kernel.journal)
    for runner in kernel.runners.values():
        runner.start()
    bars = list(feed)
    for bar in bars[:400]:
        kernel.scheduler.run_until(bar.ts)
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    months = (bars[399].ts - feed.first_ts) // month
    assert kernel.balance_checks == months  # one check a month, not one per event
    assert kernel.journal.last_seq > 3 * months
    cash = next(name for name in kernel.ledger.balances() if "cash" in name.lower())
    kernel.ledger._balances[cash] += 1  # the books no longer balance
    with pytest.raises(BalanceEquationViolated):
        for bar in bars[400:420]:
            kernel.scheduler.run_until(bar.ts)
            kernel.clock.set(bar.ts)
            kernel.bus.publish(bar)
    assert kernel.kill_switch.is_tripped("global")


def test_a_cooldown_of_zero_seconds_disables_it_as_documented() -> None:
    # Found by the campaigns: docs/risk.example.toml says 0 disables, the kernel raised.
    feed = load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")
    config = BacktestConfig(
        params={"fast": 10, "slow": 30}, risk={"protections": {"cooldown_seconds": 0}}
    )
    result = Backtest(feed, config).run()
    assert result.trades > 0
