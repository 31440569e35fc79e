"""Oracles 1 and 2 of ../shared/data/README.md: backtesting.py 0.6.6, to the cent.

The whole order path runs (strategy -> risk -> execution -> paper exchange -> portfolio ->
ledger -> journal) and the balance equation is checked after every journaled event.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from predator.ledger import Ledger
from predator.market import load_bars
from predator.node import Backtest, BacktestConfig, BacktestResult
from predator.portfolio import Portfolio
from predator.testkit import shared_data_dir

GOOG = "backtesting_py_GOOG_daily_2004-2013.csv"
ORACLE_1_TRADES = "oracle_backtesting_py_066_SmaCross10_30_trades.csv"
ORACLE_1_EQUITY = "oracle_backtesting_py_066_SmaCross10_30_equity.csv"
ORACLE_2_TRADES = "oracle_backtesting_py_066_readme_SmaCross10_20_comm002_trades.csv"


def _run(**config: object) -> BacktestResult:
    feed = load_bars(shared_data_dir() / GOOG)
    return Backtest(feed, BacktestConfig(**config)).run()  # type: ignore[arg-type]


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts // 1_000_000_000, UTC).date().isoformat()


def _assert_trades_equal(result: BacktestResult, oracle: Path) -> None:
    with oracle.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(result.trades_list) == len(rows)
    money = Decimal(10) ** -result.money_precision
    for index, (trade, row) in enumerate(zip(result.trades_list, rows, strict=True)):
        ours = (
            trade.size,
            _day(trade.entry_ts),
            _day(trade.exit_ts),
            Decimal(trade.entry_price) / 100,
            Decimal(trade.exit_price) / 100,
        )
        theirs = (
            int(row["Size"]),
            row["EntryTime"],
            row["ExitTime"],
            Decimal(row["EntryPrice"]),
            Decimal(row["ExitPrice"]),
        )
        assert ours == theirs, f"trade {index}"
        # backtesting.py computes PnL and commissions in float; ours are exact.
        assert abs(Decimal(trade.pnl) * money - Decimal(row["PnL"])) < Decimal("1e-6")
        assert abs(Decimal(trade.fees) * money - Decimal(row["Commission"])) < Decimal("1e-6")


@pytest.fixture(scope="module")
def oracle_1() -> BacktestResult:
    return _run(strategy="sma_cross", params={"fast": 10, "slow": 30})


def test_oracle_1_summary_matches_backtesting_py_to_the_cent(oracle_1: BacktestResult) -> None:
    summary = oracle_1.summary()
    assert oracle_1.final_equity == Decimal("51422.99")
    assert summary["final_equity"] == 51422.99
    assert summary["trades"] == 66
    assert summary["buy_hold_pct"] == 522.06
    assert summary["max_drawdown_pct"] == -47.98
    assert summary["win_rate_pct"] == 46.97
    assert summary["return_pct"] == 414.23
    # the exact figures behind the rounding (backtesting.py's floats, to their precision)
    perf = oracle_1.performance
    assert abs(perf.max_drawdown_pct - Decimal("-47.98012705007589")) < Decimal("1e-12")
    assert abs(perf.buy_hold_pct - Decimal("522.0601851851852")) < Decimal("1e-12")
    assert perf.win_rate_pct is not None
    assert abs(perf.win_rate_pct - Decimal("46.96969696969697")) < Decimal("1e-12")


def test_oracle_1_trade_list_equals_backtesting_py(oracle_1: BacktestResult) -> None:
    _assert_trades_equal(oracle_1, shared_data_dir() / ORACLE_1_TRADES)


def test_oracle_1_equity_curve_equals_backtesting_py(oracle_1: BacktestResult) -> None:
    with open(shared_data_dir() / ORACLE_1_EQUITY) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(oracle_1.equity_curve)
    money = Decimal(10) ** -oracle_1.money_precision
    for row, ours in zip(rows, oracle_1.equity_curve, strict=True):
        assert abs(Decimal(ours) * money - Decimal(row["Equity"])) < Decimal("1e-6"), row[""]


def test_oracle_2_with_commission_reproduces_the_066_trade_file() -> None:
    result = _run(
        strategy="sma_cross", params={"fast": 10, "slow": 20}, commission="0.002", finalize=False
    )
    _assert_trades_equal(result, shared_data_dir() / ORACLE_2_TRADES)
    # 0.6.x's documented end state: 56263.51934 equity, 93 closed trades, last one open
    assert result.final_equity == Decimal("56263.51934")
    assert result.trades == 93


def test_balance_equation_held_after_every_event_of_both_oracle_runs(
    oracle_1: BacktestResult,
) -> None:
    oracle_2 = _run(params={"fast": 10, "slow": 20}, commission="0.002", finalize=False)
    for result in (oracle_1, oracle_2):
        # one check per journaled event (the first event precedes nothing to check)
        assert result.balance_checks == result.journal_events
        assert result.fills > 100


def test_balance_equation_check_is_live_not_decorative() -> None:
    """A tampered ledger must trip the same check the oracle runs rely on."""
    from predator.ledger import Account, BalanceEquationViolated, Posting, Transaction
    from predator.market import Instrument

    instrument = Instrument(symbol="X")
    ledger = Ledger("USD", instrument.money_precision)
    portfolio = Portfolio(bus=None, ledger=ledger, instruments=[instrument], initial_cash=1000)
    portfolio.check_balance_equation()
    ledger.post(
        Transaction(ts=0, reference="leak", postings=(Posting(Account.CASH, -1), Posting("x", 1)))
    )
    with pytest.raises(BalanceEquationViolated):
        portfolio.check_balance_equation()


def test_two_runs_give_the_same_journal_digest(oracle_1: BacktestResult) -> None:
    again = _run(strategy="sma_cross", params={"fast": "10", "slow": "30"})
    assert again.journal_digest == oracle_1.journal_digest
    other = _run(strategy="sma_cross", params={"fast": 10, "slow": 31})
    assert other.journal_digest != oracle_1.journal_digest
