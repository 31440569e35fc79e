"""Built-in strategies and the strategy API, run through a full Backtest on real GOOG bars.

The crossover signals are checked against moving averages computed independently here
(exact ``Fraction`` arithmetic); the order intents (``buy(units=...)``, ``sell(fraction=...)``,
``target()``, limit and stop) are checked against the fills they must produce.
"""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from fractions import Fraction
from functools import cache
from itertools import pairwise
from math import floor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.market import Bar, BarFeed, load_bars
from predator.node import Backtest, BacktestConfig, BacktestResult
from predator.testkit import shared_data_dir

GOOG = "backtesting_py_GOOG_daily_2004-2013.csv"


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / GOOG)


@cache
def goog_bars() -> list[Bar]:
    return list(goog())


def run(strategy: str, **config: object) -> BacktestResult:
    return Backtest(goog(), BacktestConfig(strategy=strategy, **config)).run()  # type: ignore[arg-type]


def crossings(fast: list[Fraction | None], slow: list[Fraction | None]) -> list[tuple[int, int]]:
    """(bar index, +1 up / -1 down) where fast - slow changes sign strictly between bars."""
    signals = []
    previous = None
    for i, (f, s) in enumerate(zip(fast, slow, strict=True)):
        if f is None or s is None:
            continue
        diff = f - s
        if previous is not None:
            if previous < 0 < diff:
                signals.append((i, 1))
            elif previous > 0 > diff:
                signals.append((i, -1))
        previous = diff
    return signals


def sma(closes: list[int], n: int) -> list[Fraction | None]:
    return [
        None if i + 1 < n else Fraction(sum(closes[i + 1 - n : i + 1]), n)
        for i in range(len(closes))
    ]


def ema(closes: list[int], n: int, warmup: int) -> list[Fraction | None]:
    """EMA with alpha 2/(n+1), seeded with the first close; None before bar ``warmup``."""
    alpha = Fraction(2, n + 1)
    value = Fraction(closes[0])
    out: list[Fraction | None] = [None]
    for i, close in enumerate(closes[1:], 1):
        value += alpha * (close - value)
        out.append(value if i >= warmup else None)
    return out


def entries(result: BacktestResult) -> list[tuple[int, int]]:
    """(entry bar index, direction) of every round trip, in entry order."""
    index = {ts: i for i, ts in enumerate(goog().timestamps())}
    return sorted((index[t.entry_ts], 1 if t.size > 0 else -1) for t in result.trades_list)


def expected_entries(signals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Market orders sent on a signal bar fill at the next bar's open."""
    return [(i + 1, direction) for i, direction in signals if i + 1 < len(goog())]


# -- sma_cross ----------------------------------------------------------------------------


def test_sma_cross_enters_at_every_crossover_of_exact_moving_averages() -> None:
    closes = goog().closes()
    signals = crossings(sma(closes, 10), sma(closes, 30))

    result = run("sma_cross", params={"fast": 10, "slow": 30})

    assert len(signals) == 66  # backtesting.py's oracle: 66 trades on GOOG with (10, 30)
    assert entries(result) == expected_entries(signals)
    opens = {bar.ts: bar.open for bar in goog_bars()}
    assert all(trade.entry_price == opens[trade.entry_ts] for trade in result.trades_list)


@settings(max_examples=6, deadline=None)
@given(fast=st.integers(min_value=2, max_value=25), gap=st.integers(min_value=1, max_value=40))
def test_sma_cross_signals_match_independent_smas_for_any_windows(fast: int, gap: int) -> None:
    slow = fast + gap
    closes = goog().closes()

    result = run("sma_cross", params={"fast": fast, "slow": slow})

    assert entries(result) == expected_entries(crossings(sma(closes, fast), sma(closes, slow)))


def test_sma_cross_matches_backtesting_py_oracle_on_goog() -> None:
    result = run("sma_cross")

    # Oracle 1 of the shared data README (backtesting.py 0.6.6): 51422.99, 66 trades.
    assert result.final_equity == Decimal("51422.99")
    assert result.trades == 66


@pytest.mark.parametrize("params", [{"fast": 30, "slow": 10}, {"fast": 0, "slow": 10}])
def test_sma_cross_rejects_fast_not_below_slow(params: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="sma_cross needs 0 < fast < slow"):
        run("sma_cross", params=params)


# -- ema_cross ----------------------------------------------------------------------------


def test_ema_cross_trades_on_goog_at_the_crossovers_of_exact_emas() -> None:
    closes = goog().closes()
    warmup = 26 - 1
    signals = crossings(ema(closes, 12, warmup), ema(closes, 26, warmup))

    result = run("ema_cross")

    assert result.trades > 10
    assert result.fills == 2 * result.trades
    directions = [direction for _, direction in entries(result)]
    assert all(a != b for a, b in pairwise(directions))
    assert entries(result) == expected_entries(signals)


# -- the order API through user strategies -----------------------------------------------


def write(tmp_path: Path, body: str) -> str:
    source = "from decimal import Decimal\nfrom predator.strategy import Strategy\n\n"
    source += textwrap.dedent(body)
    path = tmp_path / "user_strategy.py"
    path.write_text(source)
    return str(path)


def test_buy_units_opens_that_many_units_at_the_next_open(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        """
        class BuyUnits(Strategy):
            def on_bar(self, bar):
                if not self.position and not getattr(self, "done", False):
                    self.done = True
                    self.buy(units=3)
        """,
    )
    bars = goog_bars()

    result = run(spec)

    [trade] = result.trades_list
    assert trade.size == 3
    assert (trade.entry_ts, trade.entry_price) == (bars[1].ts, bars[1].open)
    assert trade.exit_ts == bars[-1].ts  # finalize closes the position at the end


def test_buy_units_rounds_down_to_the_size_precision(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        """
        class BuyFractionalUnits(Strategy):
            def on_start(self):
                self.sent = False

            def on_bar(self, bar):
                if not self.sent:
                    self.sent = True
                    self.buy(units=Decimal("2.9"))
        """,
    )

    [trade] = run(spec).trades_list

    assert trade.size == 2


def test_sell_fraction_shorts_that_share_of_equity(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        """
        class ShortHalf(Strategy):
            def on_start(self):
                self.sent = False

            def on_bar(self, bar):
                if not self.sent:
                    self.sent = True
                    self.sell(fraction="0.5")
        """,
    )
    bars = goog_bars()
    open_price = Decimal(bars[1].open) / 100

    [trade] = run(spec, cash="10000").trades_list

    assert trade.size == -floor(Decimal(5000) / open_price)
    assert trade.entry_ts == bars[1].ts


def test_target_trades_the_difference_to_the_wanted_position(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        """
        class Targets(Strategy):
            plan = {0: 5, 10: -2, 20: 0}

            def on_start(self):
                self.bar_index = -1
                self.positions_seen = []

            def on_bar(self, bar):
                self.bar_index += 1
                if self.bar_index in self.plan:
                    self.target(self.plan[self.bar_index])
        """,
    )
    bars = goog_bars()

    result = run(spec)

    trades = [(t.size, t.entry_ts, t.exit_ts) for t in result.trades_list]
    # +5 at bar 1; -7 at bar 11 closes the 5 and opens -2; +2 at bar 21 closes the -2
    assert trades == [(5, bars[1].ts, bars[11].ts), (-2, bars[11].ts, bars[21].ts)]
    assert result.fills == 3


def test_target_equal_to_the_position_sends_no_order(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        """
        class Idle(Strategy):
            def on_bar(self, bar):
                assert self.target(0) is None
        """,
    )

    result = run(spec)

    assert (result.orders, result.fills) == (0, 0)


def test_limit_buy_fills_on_the_first_bar_trading_at_or_below_the_limit(tmp_path: Path) -> None:
    bars = goog_bars()
    limit = bars[0].close * 99 // 100  # 1 % under the first close, in cents
    spec = write(
        tmp_path,
        f"""
        class LimitBuy(Strategy):
            def on_start(self):
                self.sent = False

            def on_bar(self, bar):
                if not self.sent:
                    self.sent = True
                    self.buy(units=1, limit=Decimal({limit}) / 100)
        """,
    )
    k = next(k for k in range(1, len(bars)) if bars[k].low <= limit)

    [trade] = run(spec).trades_list

    assert k > 1  # the order really rested before filling
    assert (trade.entry_ts, trade.entry_price) == (bars[k].ts, min(bars[k].open, limit))


def test_stop_buy_fills_on_the_first_bar_trading_at_or_above_the_stop(tmp_path: Path) -> None:
    bars = goog_bars()
    stop = bars[0].close * 13 // 10  # 30 % above the first close, in cents
    spec = write(
        tmp_path,
        f"""
        class StopBuy(Strategy):
            def on_start(self):
                self.sent = False

            def on_bar(self, bar):
                if not self.sent:
                    self.sent = True
                    self.buy(units=1, stop=Decimal({stop}) / 100)
        """,
    )
    k = next(k for k in range(1, len(bars)) if bars[k].high >= stop)

    [trade] = run(spec).trades_list

    assert k > 1
    assert (trade.entry_ts, trade.entry_price) == (bars[k].ts, max(bars[k].open, stop))


def test_strategy_sees_its_fills_and_position(tmp_path: Path) -> None:
    log = tmp_path / "fills.json"
    spec = write(
        tmp_path,
        f"""
        import json

        class Watcher(Strategy):
            def on_start(self):
                self.order_id = None
                self.seen = []

            def on_bar(self, bar):
                if self.order_id is None:
                    self.order_id = self.buy(units=4)
                    self.position_after_send = self.position

            def on_fill(self, fill):
                self.seen.append([fill.client_order_id, fill.quantity, self.position])

            def on_stop(self):
                record = [self.order_id, self.position_after_send, self.seen]
                open({str(log)!r}, "w").write(json.dumps(record))
        """,
    )

    run(spec)

    order_id, position_after_send, seen = json.loads(log.read_text())
    first_bar = goog_bars()[0]
    assert order_id == f"Watcher-{first_bar.ts}-1"  # strategy, kernel time, n-th intent
    assert position_after_send == 0  # a market order fills on the next bar, not at once
    assert seen == [[order_id, 4, 4]]
