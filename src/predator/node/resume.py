"""Resuming a recovered run: re-warm strategies, rebuild the history of the bars it missed.

After :func:`~predator.node.recovery.recover` has rebuilt a kernel from the journal and
the venue, :func:`prepare_resume` makes it ready to trade (strategies re-warmed with their
intents suppressed; closes, equity curve and kill-switch equity marks of the re-warmed
bars rebuilt from the fills) and :func:`resume_run` finishes the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from predator.ledger.journal import Journal
    from predator.market.bar_loader import BarFeed
    from predator.node.backtest import BacktestConfig, BacktestResult
    from predator.node.kernel import Kernel
    from predator.node.snapshot import KernelSnapshot

__all__ = ["prepare_resume", "rebuild_history", "resume_run"]


class _RebuiltEquity:
    """The equity of bars re-warmed after a restart, from the pools' state after each fill.

    A bar's equity is each pool's cash plus position at the bar's close, after every fill
    stamped at or before the bar (fills carry the venue's trade time, the bar they
    matched on), exactly as the kernel computes it live.
    """

    def __init__(
        self,
        kernel: Kernel,
        snapshot: KernelSnapshot | None,
        timeline: list[tuple[int, str, int, int]],
    ) -> None:
        symbol = kernel.instrument.symbol
        self.from_ts = -1 if snapshot is None else snapshot.ts
        self.state: dict[str, tuple[int, int]] = {}
        for name, portfolio in kernel.portfolios.items():
            if snapshot is None:
                self.state[name] = (portfolio.initial_cash, 0)
            else:
                saved = snapshot.pools[name]
                lots = saved.lots.get(symbol, [])
                self.state[name] = (saved.cash, sum(lot[0] for lot in lots))
        self.timeline = sorted(timeline, key=lambda entry: entry[0])  # stable: journal order
        self.next = 0
        self.factor = kernel.instrument.notional_factor

    def at(self, ts: int, close: int) -> tuple[int, bool]:
        """``(equity, exposed)`` at the close of the bar opening at ``ts``."""
        timeline, state = self.timeline, self.state
        while self.next < len(timeline) and timeline[self.next][0] <= ts:
            _ts, name, cash, quantity = timeline[self.next]
            state[name] = (cash, quantity)
            self.next += 1
        equity, exposed = 0, False
        for cash, quantity in state.values():
            equity += cash + quantity * close * self.factor
            exposed = exposed or quantity != 0
        return equity, exposed


class _History:
    """Closes, equity curve and kill-switch equity marks of bars before the restart."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.rebuilt: _RebuiltEquity | None = kernel.rebuilt_equity
        settings = kernel.settings
        self.track_peak = (
            settings.max_loss_from_peak is not None or settings.daily_loss_limit is not None
        )

    def add(self, ts: int, close: int) -> None:
        kernel, rebuilt = self.kernel, self.rebuilt
        kernel.closes.append(close)
        if rebuilt is not None and ts >= rebuilt.from_ts:
            equity, exposed = rebuilt.at(ts, close)
            kernel.curve.record(equity, exposed)
            if self.track_peak:
                kernel.kill_switch.observe_equity(equity, ts)


def rebuild_history(kernel: Kernel, feed: BarFeed) -> None:
    """For a recovered run that had already completed: its closes and equity curve.

    :func:`resume_run` does this for the bars it re-warms; a completed run is not resumed.
    """
    history = _History(kernel)
    for bar in feed:
        history.add(bar.ts, bar.close)


def prepare_resume(
    kernel: Kernel,
    feed: BarFeed,
    config: BacktestConfig,
    journal: Journal,
) -> int:
    """Make a recovered kernel ready to trade again; returns the index of its first live bar.

    Strategies start and are re-warmed, intents suppressed, on the bars before the last
    one the venue matched, while the closes, the equity curve and the kill switch's equity
    marks of those bars are rebuilt. See :func:`resume_run`.
    """
    from predator.node.backtest import _announce_run

    if journal.last_seq == 0:  # nothing was durable: the run starts its journal again
        _announce_run(kernel, feed, config, journal)
    venue_last = kernel.exchange.last_bar(kernel.instrument.symbol)
    resume_ts = None if venue_last is None else venue_last.ts
    kernel.risk.sent_before_restart.update(kernel.execution.orders)
    for runner in kernel.runners.values():
        runner.start()
    history = _History(kernel)
    runners = list(kernel.runners.values())
    first_live = 0
    for bar in feed:
        if resume_ts is None or bar.ts >= resume_ts:
            break
        history.add(bar.ts, bar.close)
        for runner in runners:
            runner.warm(bar)
        first_live += 1
    return first_live


def resume_run(
    kernel: Kernel,
    feed: BarFeed,
    config: BacktestConfig,
    journal: Journal,
) -> BacktestResult:
    """Continue a recovered run to the end of ``feed`` and finish it like any run.

    When nothing of the journal was durable, announce the run (``_announce_run``) on the
    new journal *before* :func:`recover`, so ``RunStarted`` stays its first event.

    Strategies start again and are re-warmed, with their intents suppressed, on the bars
    before the last one the venue matched; from that bar on the run is live again. The
    venue ignores the bar it already matched; intents replayed with ids that already went
    out are acknowledged by the risk engine and not sent again.
    """
    from predator.node.backtest import _finish_run

    first_live = prepare_resume(kernel, feed, config, journal)
    clock, bus, scheduler = kernel.clock, kernel.bus, kernel.scheduler
    for index, bar in enumerate(feed):
        if index < first_live:
            continue
        if scheduler.next_time is not None and scheduler.next_time <= bar.ts:
            scheduler.run_until(bar.ts)
        if bar.ts > clock.now_ns():
            clock.set(bar.ts)
        bus.publish(bar)
    return _finish_run(kernel, config, journal, None, len(feed))
