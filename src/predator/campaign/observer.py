"""What the campaign watches bar by bar: every pool's equity, its peak and its drawdown.

Bars are not journaled (they are replayable inputs), so the equity path of each capital
pool, each engine and the whole book is sampled here after every bar the node handles:
exact integers in money units, the worst drawdown kept exactly, and a thinned series
(at most ``points`` samples) for the report's charts.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from predator.node.kernel import Kernel

__all__ = ["EquityObserver"]


class _Track:
    __slots__ = ("max_drawdown", "peak", "trough_ts")

    def __init__(self) -> None:
        self.peak: int | None = None
        self.max_drawdown = Fraction(0)
        self.trough_ts: int | None = None

    def add(self, ts: int, equity: int) -> None:
        peak = self.peak
        if peak is None or equity > peak:
            self.peak = equity
            return
        if peak > 0 and equity < peak:
            drawdown = Fraction(peak - equity, peak)
            if drawdown > self.max_drawdown:
                self.max_drawdown = drawdown
                self.trough_ts = ts


class EquityObserver:
    """Per-pool, per-engine and total equity after each bar (see the module docstring)."""

    def __init__(self, engines: dict[str, str], total_bars: int, points: int = 1000) -> None:
        self.engines = dict(engines)
        """Pool (strategy) name -> engine name."""
        self.every = max(1, total_bars // points)
        self.tracks: dict[str, _Track] = {}
        for name in ["total", *(f"engine:{e}" for e in sorted(set(engines.values())))]:
            self.tracks[name] = _Track()
        for name in engines:
            self.tracks[f"pool:{name}"] = _Track()
        self.series_ts: list[int] = []
        self.series: dict[str, list[int]] = {"total": []}
        self._seen = 0
        self.money_precision = 0

    def sample(self, kernel: Kernel, ts: int, close: int) -> None:
        """Record the equity of every pool at ``close`` (after the bar at ``ts``)."""
        symbol = kernel.instrument.symbol
        factor = kernel.instrument.notional_factor
        self.money_precision = kernel.instrument.money_precision
        total = 0
        per_engine: dict[str, int] = {}
        tracks = self.tracks
        for name, portfolio in kernel.portfolios.items():
            equity = portfolio.cash
            quantity = portfolio.positions[symbol].quantity
            if quantity:
                equity += quantity * close * factor
            tracks[f"pool:{name}"].add(ts, equity)
            engine = self.engines[name]
            per_engine[engine] = per_engine.get(engine, 0) + equity
            total += equity
        for engine, equity in per_engine.items():
            tracks[f"engine:{engine}"].add(ts, equity)
        tracks["total"].add(ts, total)
        self._seen += 1
        if self._seen % self.every == 1 or self.every == 1:
            self.series_ts.append(ts)
            self.series["total"].append(total)
            for engine, equity in sorted(per_engine.items()):
                self.series.setdefault(f"engine:{engine}", []).append(equity)

    @property
    def bars(self) -> int:
        """Bars the node handled (not those a crashed node missed)."""
        return self._seen

    def drawdowns(self) -> dict[str, Fraction]:
        """Worst drawdown from a running peak, per track (``total``, ``engine:E``, ``pool:P``)."""
        return {name: track.max_drawdown for name, track in self.tracks.items()}

    def export(self) -> dict[str, Any]:
        """The thinned series for charts: timestamps and integer equities per track."""
        return {
            "ts": list(self.series_ts),
            "equity": {k: list(v) for k, v in self.series.items()},
            "money_precision": self.money_precision,
        }
