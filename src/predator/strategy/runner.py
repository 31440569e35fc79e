"""StrategyRunner: hosts strategies on the bus and routes their intents to risk.

It feeds bars and fills to each strategy and turns its ``buy``/``sell`` calls into
``SubmitOrder`` commands for the risk engine — the only path an order can take.
"""

from __future__ import annotations

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.execution.order import OrderFilled
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.portfolio.portfolio import Portfolio
from predator.risk.risk_engine import SubmitOrder
from predator.strategy.api import Sizing, Strategy, StrategyContext
from predator.venue.orders import OrderRequest

__all__ = ["StrategyRunner"]


class StrategyRunner:
    """Runs one strategy on one instrument."""

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
    ) -> None:
        self._bus = bus
        self.strategy = strategy
        self.name = name or type(strategy).name or type(strategy).__name__
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
            )
        )
        self.orders_sent = 0
        self.orders_denied = 0
        bus.subscribe(Bar, strategy.on_bar)
        bus.subscribe(OrderFilled, self._on_fill)

    def _submit(self, request: OrderRequest) -> bool:
        self.orders_sent += 1
        approved = bool(self._bus.send(SubmitOrder(strategy=self.name, request=request)))
        if not approved:
            self.orders_denied += 1
        return approved

    def _on_fill(self, fill: OrderFilled) -> None:
        if fill.strategy == self.name:
            self.strategy.on_fill(fill)

    def start(self) -> None:
        self.strategy.on_start()

    def stop(self) -> None:
        self.strategy.on_stop()
