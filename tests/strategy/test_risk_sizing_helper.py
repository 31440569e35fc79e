"""``Strategy.risk_size``: size from risk per trade and stop distance, capped by the
PositionSizeManager, on real GOOG bars."""

from __future__ import annotations

import textwrap
from pathlib import Path

from predator.market import load_bars
from predator.node import Backtest, BacktestConfig
from predator.testkit import shared_data_dir


def _run(tmp_path: Path, body: str) -> list[int]:
    path = tmp_path / "sized.py"
    path.write_text(textwrap.dedent(body))
    feed = load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")
    result = Backtest(feed, BacktestConfig(strategy=str(path), cash="10000")).run()
    return [trade.size for trade in result.trades_list]


def test_risk_size_risks_the_fraction_over_the_stop_distance(tmp_path: Path) -> None:
    # first close 100.34, stop 90.34: 10.00 at risk per share; 1 % of 10,000 = 100
    # -> 10 shares (1,003.40 of notional, well under the 20 % cap)
    sizes = _run(
        tmp_path,
        """
        from predator.strategy import Strategy

        class Sized(Strategy):
            def on_bar(self, bar):
                if not self.position and not getattr(self, "done", False):
                    self.done = True
                    self.buy(self.risk_size(stop="90.34", risk_fraction="0.01"))
        """,
    )
    assert sizes == [10]


def test_risk_size_is_capped_at_twenty_percent_of_capital_per_position(tmp_path: Path) -> None:
    # 10 % risk over a 5.02 stop would be 199 shares; the cap allows 2,000 / 100.34 -> 19
    sizes = _run(
        tmp_path,
        """
        from predator.strategy import Strategy

        class Greedy(Strategy):
            def on_bar(self, bar):
                if not self.position and not getattr(self, "done", False):
                    self.done = True
                    self.buy(self.risk_size(stop="95.32", risk_fraction="0.10"))
        """,
    )
    assert sizes == [19]
