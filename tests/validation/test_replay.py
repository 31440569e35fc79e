"""Replay rebuilds, from the journal alone, the state a real run ended with.

Cash, positions, realized PnL and fees per pool equal the BacktestResult exactly; open
orders, trading states and tripped kill switches come back as the run left them.
"""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from predator.cli import main
from predator.core.numbers import from_decimal, to_decimal
from predator.ledger import Journal
from predator.ledger.journal import JournalRecord
from predator.market import load_bars
from predator.node import Backtest, BacktestConfig, BacktestResult, StrategySpec
from predator.testkit import shared_data_dir
from predator.validation import ReplayState, replay, replay_journal

REPO = Path(__file__).resolve().parents[2]
GOOG = shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv"


def _run(path: Path, **config: Any) -> BacktestResult:
    return Backtest(load_bars(GOOG), BacktestConfig(journal=str(path), **config)).run()


def _records(path: Path) -> list[JournalRecord]:
    journal = Journal(path)
    try:
        return list(journal.records())
    finally:
        journal.close()


def _units(result: BacktestResult, value: Any) -> int:
    return from_decimal(value, result.money_precision)


@pytest.fixture(scope="module")
def goog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BacktestResult]:
    """A real sma_cross run on GOOG daily bars with a 0.2 % commission, ending flat."""
    path = tmp_path_factory.mktemp("replay") / "goog.sqlite"
    return path, _run(path, commission="0.002", params={"fast": 10, "slow": 20})


def test_replay_of_a_real_goog_run_equals_its_result(goog: tuple[Path, BacktestResult]) -> None:
    path, result = goog
    state = replay_journal(path)
    pool = state.pools["main"]
    performance = result.performance
    assert state.cash == pool.cash == _units(result, performance.final_equity)
    assert pool.realized_pnl == _units(result, performance.realized_pnl)
    assert pool.fees == _units(result, performance.fees) > 0
    assert pool.initial_cash == _units(result, performance.initial_equity)
    assert state.position("GOOG") == 0
    assert (pool.fills, pool.trades, state.orders) == (result.fills, result.trades, result.orders)
    assert state.open_orders == ()
    assert state.complete and state.anomalies == ()
    assert (state.events, state.digest) == (result.journal_events, result.journal_digest)
    assert set(state.trading_states.values()) == {"active"}
    assert state.kill_switches == ()


def test_replay_of_an_open_position_values_to_the_last_equity(tmp_path: Path) -> None:
    result = _run(tmp_path / "open.sqlite", finalize=False, commission="0.002")
    state = replay_journal(tmp_path / "open.sqlite")
    quantity = state.position("GOOG")
    assert quantity != 0
    last_close = load_bars(GOOG).closes()[-1]
    factor = result.instrument.notional_factor
    # the run's last equity is cash plus the open position at the last close, to the unit
    assert state.cash + quantity * last_close * factor == result.equity_curve[-1]
    assert state.realized_pnl == _units(result, result.performance.realized_pnl)
    # the open lot came from the last fill: at cost, it is that fill's price
    last_fill = [r for r in _records(tmp_path / "open.sqlite") if r.type == "OrderFilled"][-1]
    cost = state.pools["main"].positions["GOOG"].cost
    assert cost == quantity * last_fill.payload["price"] * factor
    assert state.anomalies == ()


def test_replay_splits_state_by_capital_pool(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    result = _run(
        path,
        strategies=(
            StrategySpec(strategy="sma_cross", allocation="0.25"),
            StrategySpec(strategy="ema_cross"),
        ),
        commission="0.001",
    )
    state = replay_journal(path)
    assert set(state.pools) == {"sma_cross", "ema_cross"}
    for name, pool in state.pools.items():
        trades = result.trades_by_strategy[name]
        assert pool.trades == len(trades)
        assert pool.realized_pnl == sum(t.gross_pnl for t in trades)
        assert pool.realized_pnl - pool.fees == sum(t.pnl for t in trades)
        capital = to_decimal(pool.initial_cash, result.money_precision)
        assert str(capital.quantize(Decimal("0.01"))) == result.strategies[name]["capital"]
    assert state.cash == _units(result, result.performance.final_equity)


def test_replay_restores_a_tripped_kill_switch(tmp_path: Path) -> None:
    path = tmp_path / "halted.sqlite"
    risk = tomllib.loads((REPO / "docs" / "risk.example.toml").read_text())
    result = _run(path, risk=risk)
    assert result.risk["kill_switch_trips"] == 1
    state = replay_journal(path)
    assert [trip.scope for trip in state.kill_switches] == ["global"]
    assert state.kill_switches[0].trigger == "loss_from_peak"
    assert "sma_cross" in state.stopped_strategies


def test_replay_of_a_journal_cut_mid_order_shows_it_open(
    goog: tuple[Path, BacktestResult],
) -> None:
    records = _records(goog[0])
    accepted = [r for r in records if r.type == "OrderAccepted"][3]
    state = replay([r for r in records if r.seq <= accepted.seq])
    assert not state.complete
    [order] = state.open_orders
    assert order.client_order_id == accepted.payload["client_order_id"]
    assert order.status == "accepted"
    assert order.venue_order_id == accepted.payload["venue_order_id"]


def test_replay_json_and_text_forms(
    goog: tuple[Path, BacktestResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = goog
    assert main(["journal", "replay", "--journal", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["cash"] == str(result.performance.final_equity)
    assert document["pools"]["main"]["positions"]["GOOG"]["quantity"] == "0"
    assert document["complete"] is True and document["open_orders"] == []
    assert main(["journal", "replay", "--journal", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"cash {result.performance.final_equity}" in text
    assert "kill switches tripped: none" in text
    state = replay_journal(path)
    assert isinstance(state, ReplayState)
    assert json.loads(json.dumps(state.to_json())) == document


def test_replay_of_a_missing_journal_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "replay", "--journal", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such journal" in err
