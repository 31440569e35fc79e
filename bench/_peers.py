"""Peer engines for ``bench/bars.py``: backtesting.py and backtrader.

Both peers live in the benchmark environment (``.bench-venv``, see ``bench/setup_env.sh``) and are
never project dependencies. Each runner loads the CSV once (outside the timed region), then times
``repeats`` complete runs of the same SMA cross (fast 10 / slow 30, one unit per trade, reversed on
every crossover, cash 10,000,000, no commission) and keeps the best one.

Each runner returns a dict with: ``engine``, ``version``, ``bars``, ``trades``, ``final_equity``
(string, 2 decimals), ``best_seconds``, ``bars_per_second``, ``seconds`` (every repeat) and
``notes``. A peer that isn't installed raises :class:`PeerUnavailableError`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "CASH",
    "FAST",
    "SLOW",
    "PeerUnavailableError",
    "best_of",
    "run_backtesting_py",
    "run_backtrader",
]

CASH = 10_000_000
FAST = 10
SLOW = 30


class PeerUnavailableError(RuntimeError):
    """The peer engine isn't importable in this environment."""


def best_of(repeats: int, run: Callable[[], Any]) -> tuple[float, list[float], Any]:
    """Call ``run`` ``repeats`` times; return (best seconds, all seconds, last result).

    Only ``run()`` itself is inside the timer; a garbage collection happens before each call.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    seconds: list[float] = []
    result: Any = None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return min(seconds), seconds, result


def _read_ohlcv(path: str) -> Any:
    """Read the CSV (``open_time,open,high,low,close,volume``) into a tz-naive UTC-indexed frame."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise PeerUnavailableError(
            "pandas not installed in this environment; run `make bench`"
        ) from exc

    df = pd.read_csv(path, index_col=0, parse_dates=True)
    if getattr(df.index, "tz", None) is not None:
        df.index = df.index.tz_convert("UTC").tz_localize(None)
    return df


def _summary(
    engine: str,
    version: str,
    bars: int,
    trades: int,
    final_equity: float,
    best: float,
    seconds: list[float],
    notes: str,
) -> dict[str, Any]:
    return {
        "engine": engine,
        "version": version,
        "bars": bars,
        "trades": trades,
        "final_equity": f"{final_equity:.2f}",
        "best_seconds": best,
        "bars_per_second": bars / best,
        "seconds": seconds,
        "notes": notes,
    }


def run_backtesting_py(path: str, repeats: int) -> dict[str, Any]:
    """SMA cross on backtesting.py: ``Backtest(df, S, cash=..., finalize_trades=True).run()``.

    Timed region: building the ``Backtest`` from the already-loaded frame plus ``run()`` (which,
    as always in backtesting.py, also computes its stats). Orders fill at the next bar's open;
    the trade still open at the end is closed by ``finalize_trades=True`` at the last close.
    """
    try:
        import backtesting
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
        from backtesting.test import SMA
    except ImportError as exc:
        raise PeerUnavailableError(
            "backtesting.py not installed in this environment; run `make bench`"
        ) from exc

    class SmaCross(Strategy):  # type: ignore[misc]
        fast = FAST
        slow = SLOW

        def init(self) -> None:
            close = self.data.Close
            self.sma_fast = self.I(SMA, close, self.fast)
            self.sma_slow = self.I(SMA, close, self.slow)

        def next(self) -> None:
            if crossover(self.sma_fast, self.sma_slow):
                self.position.close()
                self.buy(size=1)
            elif crossover(self.sma_slow, self.sma_fast):
                self.position.close()
                self.sell(size=1)

    df = _read_ohlcv(path)
    df.columns = [str(c).capitalize() for c in df.columns]

    def run() -> Any:
        return Backtest(df, SmaCross, cash=CASH, finalize_trades=True).run()

    best, seconds, stats = best_of(repeats, run)
    return _summary(
        engine="backtesting.py",
        version=getattr(backtesting, "__version__", "?"),
        bars=len(df),
        trades=int(stats["# Trades"]),
        final_equity=float(stats["Equity Final [$]"]),
        best=best,
        seconds=seconds,
        notes="fills at next open; open trade closed at last close (finalize_trades=True)",
    )


def run_backtrader(path: str, repeats: int) -> dict[str, Any]:
    """SMA cross on backtrader: SMA(10), SMA(30), CrossOver; ``close()`` then ``buy/sell(size=1)``.

    Timed region: building ``Cerebro`` (``stdstats=False``: no plotting observers) with a
    ``PandasData`` feed over the already-loaded frame, plus ``cerebro.run()`` (default
    ``preload``/``runonce``). Market orders fill at the next bar's open, no commission.

    backtrader cannot fill an order after the last bar, so the position still open at the end is
    marked to market at the last close: ``broker.getvalue()`` is the final equity (the same as
    closing it there with zero commission) and that open trade is counted as one more trade.
    """
    try:
        import backtrader as bt
    except ImportError as exc:
        raise PeerUnavailableError(
            "backtrader not installed in this environment; run `make bench`"
        ) from exc

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        params = (("fast", FAST), ("slow", SLOW))

        def __init__(self) -> None:
            sma_fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
            sma_slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
            self.cross = bt.indicators.CrossOver(sma_fast, sma_slow)
            self.closed_trades = 0

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                self.closed_trades += 1

        def next(self) -> None:
            if self.cross[0] > 0:
                self.close()
                self.buy(size=1)
            elif self.cross[0] < 0:
                self.close()
                self.sell(size=1)

    df = _read_ohlcv(path)
    df.columns = [str(c).lower() for c in df.columns]

    def run() -> tuple[Any, float]:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.broker.setcash(CASH)
        cerebro.adddata(bt.feeds.PandasData(dataname=df))
        cerebro.addstrategy(SmaCross)
        strategy = cerebro.run()[0]
        return strategy, cerebro.broker.getvalue()

    best, seconds, (strategy, value) = best_of(repeats, run)
    still_open = 1 if strategy.position.size != 0 else 0
    return _summary(
        engine="backtrader",
        version=getattr(bt, "__version__", "?"),
        bars=len(df),
        trades=strategy.closed_trades + still_open,
        final_equity=float(value),
        best=best,
        seconds=seconds,
        notes="fills at next open; open trade marked to market at last close and counted",
    )
