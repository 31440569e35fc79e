"""The ConsistencyChecker: the state invariants beyond the balance equation, per event.

Independently of the portfolios it keeps its own count of every pool's position from the
fills it hears, and after each journaled order event checks: every order sent has an
approved risk decision, every fill has its order, no venue trade id is applied twice, and
each pool's position equals the sum of its fills. (The balance equation — cash = initial
+ realized PnL - fees +/- transfers, the ledger agreeing with the portfolio — is checked by
the kernel after every journaled event.) A violation is journaled as
:class:`InvariantViolated` and handed to ``on_violation``: the kernel trips the global kill
switch and stops, because books it cannot trust must not trade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from predator.core.bus import MessageBus
from predator.core.events import Event
from predator.execution.execution_engine import ExecutionEngine
from predator.execution.order import FillReversed, OrderFilled, OrderSubmitted
from predator.portfolio.portfolio import Portfolio
from predator.risk.risk_engine import RiskDecision

__all__ = ["ConsistencyChecker", "InvariantViolated", "StateInconsistent"]


class StateInconsistent(AssertionError):
    """Raised by the kernel after an :class:`InvariantViolated`: the run cannot go on."""

    def __init__(self, violation: InvariantViolated) -> None:
        super().__init__(f"{violation.invariant}: {violation.detail}")
        self.violation = violation


class InvariantViolated(Event, frozen=True, kw_only=True):
    """A state invariant failed: which one, and the evidence."""

    invariant: str
    detail: str


class ConsistencyChecker:
    """Checks order coverage, unique fills and positions = sum of fills, event by event."""

    def __init__(
        self,
        bus: MessageBus,
        execution: ExecutionEngine,
        portfolios: Mapping[str, Portfolio],
        *,
        on_violation: Callable[[InvariantViolated], None] | None = None,
    ) -> None:
        self._bus = bus
        self._execution = execution
        self._pools = {portfolio.account: portfolio for portfolio in portfolios.values()}
        self._on_violation = on_violation
        self._approved: set[str] = set()
        self._trade_ids: set[str] = set()
        self._positions: dict[tuple[str, str], int] = {}
        self.checks = 0
        self.violations: list[InvariantViolated] = []
        # A decision is the risk engine's own fact: heard as journaled (a tap), not as a
        # transport between components may deliver it.
        bus.tap(RiskDecision, self._on_decision)
        bus.subscribe(OrderSubmitted, self._on_submitted)
        bus.subscribe(OrderFilled, self._on_fill)
        bus.subscribe(FillReversed, self._on_reversed)

    def resync(self) -> None:
        """Take the rebuilt state as the starting point (after a crash recovery rebuilt
        orders and portfolios without publishing them)."""
        orders = self._execution.orders
        self._approved = set(orders)
        self._trade_ids = {trade for order in orders.values() for trade in order.trade_ids}
        self._positions = {
            (account, symbol): position.quantity
            for account, portfolio in self._pools.items()
            for symbol, position in portfolio.positions.items()
        }

    # -- handlers ---------------------------------------------------------------------
    def _on_decision(self, decision: RiskDecision) -> None:
        if decision.approved:
            self._approved.add(decision.client_order_id)

    def _on_submitted(self, event: OrderSubmitted) -> None:
        self.checks += 1
        if event.client_order_id not in self._approved:
            self._violated(
                "order_has_decision",
                f"order {event.client_order_id} of {event.strategy} was sent without an "
                "approved risk decision",
                event.ts,
            )

    def _on_fill(self, fill: OrderFilled) -> None:
        self.checks += 1
        if fill.trade_id in self._trade_ids:
            self._violated(
                "fill_applied_once", f"venue trade {fill.trade_id} applied twice", fill.ts
            )
            return
        self._trade_ids.add(fill.trade_id)
        if fill.client_order_id not in self._execution.orders:
            self._violated(
                "fill_has_order",
                f"fill {fill.trade_id} is for order {fill.client_order_id}, which was never sent",
                fill.ts,
            )
        key = (fill.account, fill.symbol)
        expected = self._positions.get(key, 0) + fill.side * fill.quantity
        self._positions[key] = expected
        pool = self._pools.get(fill.account)
        if pool is None:
            self._violated(
                "fill_has_pool", f"fill {fill.trade_id} is for unknown pool {fill.account}", fill.ts
            )
            return
        actual = pool.position_quantity(fill.symbol)
        if actual != expected:
            self._violated(
                "position_is_sum_of_fills",
                f"pool {fill.account} holds {actual} {fill.symbol}, its fills sum to {expected}",
                fill.ts,
            )

    def _on_reversed(self, event: FillReversed) -> None:
        """A reversed fill is no longer applied: its trade id and quantity are taken out."""
        if event.trade_id not in self._trade_ids:
            return
        self._trade_ids.discard(event.trade_id)
        key = (event.account, event.symbol)
        self._positions[key] = self._positions.get(key, 0) - event.side * event.quantity

    def _violated(self, invariant: str, detail: str, ts: int) -> None:
        violation = InvariantViolated(ts=ts, invariant=invariant, detail=detail)
        self.violations.append(violation)
        self._bus.publish(violation)
        if self._on_violation is not None:
            self._on_violation(violation)
