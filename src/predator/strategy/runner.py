"""StrategyRunner: hosts one strategy on the bus and routes its intents to risk.

It feeds bars, fills and timers to the strategy (and, on level-2 data, the quotes,
trades and book updates the node's feed hands it) and turns its ``buy``/``sell`` calls
into ``SubmitOrder`` commands for the risk engine — the only path an order can take;
its ``cancel`` calls become ``CancelOrder`` commands. It also isolates the strategy: an
exception is journaled, the strategy is stopped, and the rest of the system keeps running.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from predator.core.bus import MessageBus, NoHandler
from predator.core.clock import Clock
from predator.core.errors import KernelFault
from predator.core.events import Command, Event
from predator.core.scheduler import ScenarioClock
from predator.execution.order import FillReversed, OrderCanceled, OrderFilled, OrderRejected
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.market.l2 import QuoteTick, TradeTick
from predator.market.order_book import OrderBook
from predator.portfolio.portfolio import Portfolio
from predator.risk.risk_engine import SubmitOrder
from predator.strategy.api import Sizing, Strategy, StrategyContext
from predator.venue.orders import OrderRequest

__all__ = ["CancelOrder", "StrategyFailed", "StrategyRunner", "StrategyStopped"]


class CancelOrder(Command, frozen=True, kw_only=True):
    """A strategy asks to cancel one of its working orders; the node's handler answers
    True when it sent the cancel to the venue. No risk approval: a cancel only reduces
    risk."""

    strategy: str
    client_order_id: str


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
                cancel=self._cancel,
                open_orders=lambda: list(self._working),
            )
        )
        self.orders_sent = 0
        self.orders_denied = 0
        self.stopped: str | None = None
        self._strategy_on_bar = strategy.on_bar
        self.dry = False
        self._last_close: int | None = None
        self._symbol = symbol
        self._working: dict[str, None] = {}
        """The strategy's approved orders not yet filled in full, canceled or rejected."""
        self._strategy_on_quote = strategy.on_quote
        self._strategy_on_trade = strategy.on_trade
        self._strategy_on_book = strategy.on_book
        bus.subscribe(Bar, self._on_bar)
        bus.subscribe(OrderFilled, self._on_fill)
        bus.subscribe(FillReversed, self._on_reversed)
        bus.subscribe(OrderCanceled, self._on_closed)
        bus.subscribe(OrderRejected, self._on_closed)

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
        if fill.strategy == self.name:
            if not fill.leaves_quantity:
                self._working.pop(fill.client_order_id, None)
            if self.stopped is None:
                self._call("on_fill", self.strategy.on_fill, fill)

    def _on_reversed(self, event: FillReversed) -> None:
        # The order is open again; the strategy itself already heard the fill (it is not
        # told twice: the reversal is a correction of the books, not a new fact for it).
        if event.strategy == self.name:
            self._working[event.client_order_id] = None

    def _on_closed(self, event: OrderCanceled | OrderRejected) -> None:
        if event.strategy == self.name:
            self._working.pop(event.client_order_id, None)

    # -- level-2 delivery (called by the node's market-data feed) -------------------------
    def on_quote(self, quote: QuoteTick, mid: int) -> None:
        """Deliver a best bid/ask; ``mid`` (a price int) becomes the strategy's last price."""
        self._last_close = mid
        if self.stopped is None:
            try:
                self._strategy_on_quote(quote)
            except Exception as exc:  # isolation: a strategy's bug must not kill the node
                self._failed("on_quote", exc)

    def on_trade(self, trade: TradeTick) -> None:
        """Deliver a trade on the venue."""
        if self.stopped is None:
            try:
                self._strategy_on_trade(trade)
            except Exception as exc:  # isolation: a strategy's bug must not kill the node
                self._failed("on_trade", exc)

    def on_book(self, book: OrderBook) -> None:
        """Deliver the node's book after a depth update it took (valid books only)."""
        if self.stopped is None:
            try:
                self._strategy_on_book(book)
            except Exception as exc:  # isolation: a strategy's bug must not kill the node
                self._failed("on_book", exc)

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
        indicators after a restart); nothing is sent, counted or journaled. A stopped
        strategy is not fed: it heard no bar while stopped before the restart either."""
        self._last_close = bar.close
        if self.stopped is not None:
            return
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
        client_order_id = request.client_order_id
        # Working from the moment it is sent: without latency the venue may fill or
        # reject it before ``send`` returns (and the closing event removes it again).
        self._working[client_order_id] = None
        try:
            approved = bool(self._bus.send(SubmitOrder(strategy=self.name, request=request)))
        except Exception as exc:  # the kernel failed: never let the strategy swallow it
            raise KernelFault(exc) from exc
        if not approved:
            self.orders_denied += 1
            self._working.pop(client_order_id, None)
        return approved

    def _cancel(self, client_order_id: str) -> bool:
        if self.dry or client_order_id not in self._working:
            return False
        command = CancelOrder(strategy=self.name, client_order_id=client_order_id)
        try:
            return bool(self._bus.send(command))
        except NoHandler:
            raise RuntimeError("this runtime cannot cancel orders") from None
        except Exception as exc:  # the kernel failed: never let the strategy swallow it
            raise KernelFault(exc) from exc
