"""The RiskEngine (the "CRO"): every order intent passes it, or no order is sent.

It holds the trading state (ACTIVE / REDUCING / HALTED) and runs pre-trade checks;
each decision is a journaled event with its reason. Only an approved request
becomes an ``ExecuteOrder`` command; strategies never see the execution engine.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.core.events import Command, Event
from predator.execution.execution_engine import ExecuteOrder
from predator.execution.order import OrderCanceled, OrderFilled, OrderRejected
from predator.portfolio.portfolio import Portfolio
from predator.venue.orders import OrderRequest

__all__ = [
    "RiskDecision",
    "RiskEngine",
    "RiskLimits",
    "SubmitOrder",
    "TradingState",
    "TradingStateChanged",
]


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    """Only orders that reduce exposure pass."""
    HALTED = "halted"
    """No new orders pass (cancels only)."""


class SubmitOrder(Command, frozen=True, kw_only=True):
    """A strategy's order intent, addressed to the risk engine."""

    strategy: str
    request: OrderRequest


class RiskDecision(Event, frozen=True, kw_only=True):
    """The risk engine's verdict on one intent, with the reason."""

    client_order_id: str
    strategy: str
    approved: bool
    reason: str


class TradingStateChanged(Event, frozen=True, kw_only=True):
    """Trading state moved; ``actor`` and ``reason`` explain every halt and resume."""

    previous: TradingState
    state: TradingState
    actor: str
    reason: str


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Pre-trade limits; ``None`` disables a limit. Quantities at size precision."""

    max_order_quantity: int | None = None


class RiskEngine:
    """Pre-trade authority over every order intent."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        clock: Clock,
        portfolio: Portfolio,
        limits: RiskLimits | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._portfolio = portfolio
        self.limits = limits or RiskLimits()
        self.state = TradingState.ACTIVE
        self._seen_ids: set[str] = set()
        # Approved orders not yet resolved: their exposure counts as if filled.
        self._pending: dict[str, OrderRequest] = {}
        self._pending_filled: dict[str, int] = {}
        self.approved = 0
        self.denied = 0
        bus.register(SubmitOrder, self._on_submit)
        bus.subscribe(OrderFilled, self._on_fill)
        bus.subscribe(OrderCanceled, self._on_done)
        bus.subscribe(OrderRejected, self._on_done)

    def set_state(self, state: TradingState, *, actor: str, reason: str) -> None:
        """Change the trading state; journaled with who and why."""
        if state is self.state:
            return
        previous, self.state = self.state, state
        self._bus.publish(
            TradingStateChanged(
                ts=self._clock.now_ns(), previous=previous, state=state, actor=actor, reason=reason
            )
        )

    def halt(self, *, actor: str, reason: str) -> None:
        """Stop all new orders."""
        self.set_state(TradingState.HALTED, actor=actor, reason=reason)

    def projected_position(self, symbol: str) -> int:
        """Position if every approved, unresolved order of ``symbol`` filled in full."""
        projected = self._portfolio.position_quantity(symbol)
        for client_order_id, request in self._pending.items():
            if request.symbol != symbol:
                continue
            if request.close_position:
                projected = 0 if request.side * projected < 0 else projected
                continue
            if request.equity_fraction is not None:
                continue  # sized at fill time; only ever allowed while ACTIVE
            left = request.quantity - self._pending_filled.get(client_order_id, 0)
            projected += request.side * left
        return projected

    def _reduces_exposure(self, request: OrderRequest) -> bool:
        if request.equity_fraction is not None:
            return False
        projected = self.projected_position(request.symbol)
        if request.close_position:
            return projected * request.side < 0
        return projected * request.side < 0 and request.quantity <= abs(projected)

    def _on_fill(self, fill: OrderFilled) -> None:
        if fill.client_order_id not in self._pending:
            return
        if fill.leaves_quantity == 0:
            self._on_done(fill)
            return
        filled = self._pending_filled.get(fill.client_order_id, 0) + fill.quantity
        self._pending_filled[fill.client_order_id] = filled

    def _on_done(self, event: OrderFilled | OrderCanceled | OrderRejected) -> None:
        self._pending.pop(event.client_order_id, None)
        self._pending_filled.pop(event.client_order_id, None)

    def check(self, request: OrderRequest) -> str | None:
        """The reason ``request`` must be denied, or ``None`` to approve it."""
        if request.client_order_id in self._seen_ids:
            return f"duplicate client order id {request.client_order_id}"
        if self.state is TradingState.HALTED:
            return "trading halted"
        if request.symbol not in self._portfolio.instruments:
            return f"unknown instrument {request.symbol}"
        if self.state is TradingState.REDUCING and not self._reduces_exposure(request):
            return "trading is reducing-only and this order adds exposure"
        limit = self.limits.max_order_quantity
        if limit is not None and request.quantity > limit:
            return f"order quantity {request.quantity} above limit {limit}"
        return None

    def _on_submit(self, command: SubmitOrder) -> bool:
        request = command.request
        reason = self.check(request)
        self._seen_ids.add(request.client_order_id)
        approved = reason is None
        self._bus.publish(
            RiskDecision(
                ts=self._clock.now_ns(),
                client_order_id=request.client_order_id,
                strategy=command.strategy,
                approved=approved,
                reason=reason or "approved",
            )
        )
        if not approved:
            self.denied += 1
            return False
        self.approved += 1
        self._pending[request.client_order_id] = request
        self._bus.send(ExecuteOrder(strategy=command.strategy, request=request))
        return True
