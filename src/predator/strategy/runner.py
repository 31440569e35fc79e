"""StrategyRunner: hosts one strategy on the bus and routes its intents to risk.

It feeds bars, fills and timers to the strategy and turns its ``buy``/``sell`` calls
into ``SubmitOrder`` commands for the risk engine — the only path an order can take.
It also isolates the strategy: an exception is journaled, the strategy is stopped,
and the rest of the system keeps running.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.core.errors import KernelFault
from predator.core.events import Event
from predator.core.scheduler import ScenarioClock
from predator.execution.order import OrderFilled
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.portfolio.portfolio import Portfolio
from predator.risk.risk_engine import SubmitOrder
from predator.strategy.api import Sizing, Strategy, StrategyContext
from predator.venue.orders import OrderRequest

__all__ = ["StrategyFailed", "StrategyRunner", "StrategyStopped"]


class StrategyFailed(Event, frozen=True, kw_only=True):
    """The strategy's code raised; it has been stopped. ``where`` is the callback."""

    strategy: str
    where: str
    error: str
    location: str


class StrategyStopped(Event, frozen=True, kw_only=True):
    """The strategy receives nothing more (killed, failed or finished)."""

    strategy: str
    reason: str


class StrategyRunner:
    """Runs one strategy on one instrument, in its own capital pool (``account``)."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        clock: Clock,
        portfolio: Portfolio,
        strategy: Strategy,
        instrument: Instrument,
        sizing: Sizing,
        name: str | None = None,
        scheduler: ScenarioClock | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._scheduler = scheduler
        self.strategy = strategy
        self.name = name or type(strategy).name or type(strategy).__name__
        self.portfolio = portfolio
        symbol = instrument.symbol
        positions = portfolio.positions
        strategy.bind(
            StrategyContext(
                name=self.name,
                instrument=instrument,
                sizing=sizing,
                submit=self._submit,
                position=lambda: positions[symbol].quantity,
                now_ns=clock.now_ns,
                account=portfolio.account,
                schedule_every=self._schedule_every if scheduler is not None else None,
                equity=self._equity,
                last_price=lambda: self._last_close,
            )
        )
        self.orders_sent = 0
        self.orders_denied = 0
        self.stopped: str | None = None
        self._strategy_on_bar = strategy.on_bar
        self.dry = False
        self._last_close: int | None = None
        self._symbol = symbol
        bus.subscribe(Bar, self._on_bar)
        bus.subscribe(OrderFilled, self._on_fill)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._call("on_start", self.strategy.on_start)

    def stop(self) -> None:
        """Call the strategy's ``on_stop`` (unless it was already stopped)."""
        if self.stopped is None:
            self._call("on_stop", self.strategy.on_stop)

    def kill(self, reason: str) -> None:
        """Stop delivering anything to the strategy; journaled once."""
        if self.stopped is not None:
            return
        self.stopped = reason
        self._bus.publish(
            StrategyStopped(ts=self._clock.now_ns(), strategy=self.name, reason=reason)
        )

    # -- delivery ---------------------------------------------------------------------------
    def _on_bar(self, bar: Bar) -> None:
        # The hottest path of a run: the isolation wrapper is inlined here.
        self._last_close = bar.close
        if self.stopped is None:
            try:
                self._strategy_on_bar(bar)
            except Exception as exc:  # isolation: a strategy's bug must not kill the node
                self._failed("on_bar", exc)

    def _on_fill(self, fill: OrderFilled) -> None:
        if fill.strategy == self.name and self.stopped is None:
            self._call("on_fill", self.strategy.on_fill, fill)

    def _equity(self) -> int:
        close = self._last_close
        return self.portfolio.equity({self._symbol: close} if close is not None else {})

    def _schedule_every(self, interval_ns: int, callback: Callable[[int], None]) -> None:
        scheduler = self._scheduler
        assert scheduler is not None

        def tick() -> None:
            if self.stopped is not None:
                return
            self._call("timer", callback, self._clock.now_ns())
            scheduler.schedule_in(interval_ns, tick)

        scheduler.schedule_in(interval_ns, tick)

    def _call(self, where: str, function: Callable[..., Any], *args: Any) -> None:
        try:
            function(*args)
        except Exception as exc:  # isolation: a strategy's bug must not kill the node
            self._failed(where, exc)

    def _failed(self, where: str, exc: Exception) -> None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        self._bus.publish(
            StrategyFailed(
                ts=self._clock.now_ns(),
                strategy=self.name,
                where=where,
                error=f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                location=f"{frame.filename}:{frame.lineno}",
            )
        )
        self.kill(f"raised in {where}: {type(exc).__name__}")

    def warm(self, bar: Bar) -> None:
        """Feed ``bar`` to the strategy with its intents suppressed (rebuilding its
        indicators after a restart); nothing is sent, counted or journaled."""
        self._last_close = bar.close
        self.dry = True
        ctx = self.strategy.ctx
        # Suppressed intents take no client order id: the live ones of this instant must
        # get the ids they had before the restart.
        saved = ctx.id_state()
        try:
            self._strategy_on_bar(bar)
        finally:
            self.dry = False
            ctx.restore_id_state(saved)

    def _submit(self, request: OrderRequest) -> bool:
        if self.stopped is not None or self.dry:
            return False
        self.orders_sent += 1
        try:
            approved = bool(self._bus.send(SubmitOrder(strategy=self.name, request=request)))
        except Exception as exc:  # the kernel failed: never let the strategy swallow it
            raise KernelFault(exc) from exc
        if not approved:
            self.orders_denied += 1
        return approved
