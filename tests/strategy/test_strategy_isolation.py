"""Strategy isolation, end to end: a Backtest on real GOOG daily bars with two strategies.

A user strategy that raises is stopped and journaled while its neighbour trades exactly
as it would alone with the same capital; a kernel failure raised while user code is on
the stack cannot be swallowed by that code's ``except Exception`` and fails the run.
"""

from __future__ import annotations

import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from predator.core.errors import KernelFault
from predator.ledger import BalanceEquationViolated, Journal
from predator.ledger.journal import JournalRecord
from predator.market import BarFeed, load_bars
from predator.node import Backtest, BacktestConfig, BacktestResult, StrategySpec
from predator.portfolio import Portfolio
from predator.testkit import shared_data_dir

GOOG = "backtesting_py_GOOG_daily_2004-2013.csv"
SMA = StrategySpec(strategy="sma_cross", params={"fast": 10, "slow": 30}, allocation="0.5")

EXPLODING = """
from predator.strategy import Strategy


class Exploding(Strategy):
    name = "exploding"
    parameters = {"fail_at": 300, "where": "on_bar"}

    def on_start(self):
        self.bars = 0

    def on_bar(self, bar):
        self.bars += 1
        if self.where == "on_bar" and self.bars >= self.fail_at:
            raise RuntimeError(f"boom at bar {self.bars}")  # and on every bar after it
        if self.bars % 25 == 0:
            self.buy(1)

    def on_fill(self, fill):
        if self.where == "on_fill" and self.bars >= self.fail_at:
            raise RuntimeError(f"boom on a fill after bar {self.fail_at}")
"""

SWALLOWING = """
from predator.strategy import Strategy


class Swallowing(Strategy):
    name = "swallowing"

    def on_bar(self, bar):
        try:
            self.buy(1)
        except Exception:
            pass  # exactly what STYLE.md forbids; the kernel must not care
"""


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / GOOG)


def run(**config: Any) -> BacktestResult:
    return Backtest(goog(), BacktestConfig(**config)).run()


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def records(path: Path) -> list[JournalRecord]:
    with Journal(path) as journal:
        return list(journal.records())


def fills_of(journal: list[JournalRecord], strategy: str) -> list[tuple[Any, ...]]:
    """A strategy's fills as (time, side, price, quantity, fee): venue trade ids excluded,
    since the venue numbers trades across all accounts."""
    return [
        (r.ts, r.payload["side"], r.payload["price"], r.payload["quantity"], r.payload["fee"])
        for r in journal
        if r.type == "OrderFilled" and r.payload["strategy"] == strategy
    ]


@pytest.fixture(scope="module")
def sma_alone(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, Path]:
    """sma_cross alone with 10,000: the capital it gets as half of 20,000 below."""
    path = tmp_path_factory.mktemp("alone") / "alone.sqlite"
    result = run(
        strategy="sma_cross", params={"fast": 10, "slow": 30}, cash="10000", journal=str(path)
    )
    return result, path


@pytest.mark.parametrize("where", ["on_bar", "on_fill"])
def test_a_raising_strategy_is_stopped_and_journaled_while_its_neighbour_trades_as_if_alone(
    tmp_path: Path, sma_alone: tuple[BacktestResult, Path], where: str
) -> None:
    strategy = write(tmp_path, "exploding.py", EXPLODING)
    path = tmp_path / "run.sqlite"

    result = run(
        strategies=(
            StrategySpec(strategy=str(strategy), params={"where": where}, allocation="0.5"),
            SMA,
        ),
        cash="20000",
        journal=str(path),
    )

    exploding, sma = result.strategies["exploding"], result.strategies["sma_cross"]
    assert (exploding["state"], exploding["stopped_reason"]) == (
        "stopped",
        f"raised in {where}: RuntimeError",
    )
    assert sma["state"] == "active"
    journal = records(path)
    (failed,) = [r for r in journal if r.type == "StrategyFailed"]  # stopped: called no more
    assert (failed.payload["strategy"], failed.payload["where"]) == ("exploding", where)
    assert failed.payload["error"].startswith("RuntimeError: boom")
    assert failed.payload["location"].startswith(str(strategy))
    (stopped,) = [r for r in journal if r.type == "StrategyStopped"]
    assert stopped.payload["strategy"] == "exploding"
    assert journal[-1].type == "RunCompleted"
    # the failed strategy had been trading, and sends nothing after it failed
    decisions = [
        r for r in journal if r.type == "RiskDecision" and r.payload["strategy"] == "exploding"
    ]
    assert any(r.ts < failed.ts for r in decisions)
    assert not any(r.ts > failed.ts for r in decisions)
    # its neighbour's trades are exactly those it makes alone with the same capital
    alone, alone_path = sma_alone
    assert sma["trades"] == alone.trades > 0
    assert fills_of(journal, "sma_cross") == fills_of(records(alone_path), "sma_cross")
    assert exploding["trades"] == 0  # it only ever bought: every closed trade is sma_cross's
    assert result.trades_list == alone.trades_list


def test_a_strategy_cannot_swallow_a_kernel_failure_raised_inside_its_own_buy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = write(tmp_path, "swallowing.py", SWALLOWING)
    original = Portfolio.check_balance_equation
    inside_user_code = {"checks": 0}

    def check_failing_on_the_tenth_call_inside_user_code(self: Portfolio) -> None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != str(strategy):
            frame = frame.f_back
        if frame is not None:
            inside_user_code["checks"] += 1
            if inside_user_code["checks"] == 3:
                raise BalanceEquationViolated("injected", 0, 1)
        original(self)

    monkeypatch.setattr(
        Portfolio, "check_balance_equation", check_failing_on_the_tenth_call_inside_user_code
    )
    journal_dir = tmp_path / "journals"

    with pytest.raises(KernelFault) as raised:
        run(
            strategies=(StrategySpec(strategy=str(strategy), allocation="0.5"), SMA),
            cash="20000",
            # trade-on-close fills inside buy(): the books change (and are checked)
            # while the user's code is on the stack
            fill="close",
            journal=str(journal_dir / "run.sqlite"),
        )

    assert isinstance(raised.value.cause, BalanceEquationViolated)
    assert raised.value.cause.detail == "injected"
    assert list(journal_dir.iterdir()) == []
