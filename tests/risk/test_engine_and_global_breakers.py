"""Breakers at engine and global level, next to each strategy's own.

An engine's breaker hears its strategies' faults and venue failures; the global one hears
venue failures only, so one strategy's bad behaviour cannot halt the whole system.
"""

from __future__ import annotations

from itertools import count

from predator.core.bus import MessageBus
from predator.core.clock import TimeWarp
from predator.execution.execution_engine import ExecuteOrder
from predator.execution.order import OrderRejected
from predator.ledger.ledger import Ledger
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.portfolio.portfolio import Portfolio
from predator.risk import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    RiskDecision,
    RiskEngine,
    RiskLimits,
    SubmitOrder,
)
from predator.venue.orders import OrderRequest, Side

GOOG = Instrument(symbol="GOOG")
T0 = 1_700_000_000_000_000_000


class Rig:
    def __init__(self, limits: RiskLimits, engines: dict[str, str]) -> None:
        self.bus = bus = MessageBus()
        self.clock = clock = TimeWarp.virtual(T0)
        ledger = Ledger("USD", GOOG.money_precision)
        self.risk = risk = RiskEngine(bus=bus, clock=clock, limits=limits)
        config = BreakerConfig()
        for name, engine in engines.items():
            portfolio = Portfolio(
                bus=bus,
                ledger=ledger,
                instruments=[GOOG],
                initial_cash=10**6 * 10**GOOG.money_precision,
                account=name,
            )
            breaker = CircuitBreaker(f"strategy:{name}", config, clock)
            risk.register_strategy(name, engine=engine, portfolio=portfolio, breaker=breaker)
        for engine in set(engines.values()):
            risk.engine_breakers[engine] = CircuitBreaker(f"engine:{engine}", config, clock)
        risk.global_breaker = CircuitBreaker("global", config, clock)
        self.decisions: list[RiskDecision] = []
        bus.subscribe(RiskDecision, self.decisions.append)
        bus.register(ExecuteOrder, lambda command: True)
        bus.publish(Bar(ts=T0, symbol="GOOG", open=10_000, high=10_000, low=10_000, close=10_000))
        self._ids = count(1)

    def submit(self, strategy: str, quantity: int = 1) -> RiskDecision:
        request = OrderRequest(
            client_order_id=f"{strategy}-{next(self._ids)}",
            symbol="GOOG",
            side=Side.BUY,
            quantity=quantity,
            account=strategy,
        )
        self.bus.send(SubmitOrder(strategy=strategy, request=request))
        return self.decisions[-1]

    def venue_rejects(self, decision: RiskDecision) -> None:
        self.bus.publish(
            OrderRejected(
                ts=self.clock.now_ns(),
                client_order_id=decision.client_order_id,
                strategy=decision.strategy,
                reason="insufficient_margin",
            )
        )


def test_an_engines_breaker_opens_on_its_strategies_faults_and_stops_them_all() -> None:
    rig = Rig(RiskLimits(max_order_quantity=10), {"a": "trend", "b": "trend", "c": "mm"})
    for i in range(5):  # faults alternate between the two strategies of one engine
        assert rig.submit("a" if i % 2 else "b", quantity=11).check == "order_size"
    assert rig.risk.engine_breakers["trend"].state is BreakerState.OPEN
    denied = rig.submit("a")
    assert not denied.approved and denied.reason == "circuit breaker open (engine:trend)"
    assert rig.submit("c").approved  # another engine trades on
    assert rig.risk.global_breaker is not None
    assert rig.risk.global_breaker.state is BreakerState.CLOSED


def test_the_global_breaker_opens_on_venue_failures_and_halts_every_strategy() -> None:
    rig = Rig(RiskLimits(), {"a": "trend", "b": "mm"})
    for i in range(5):
        decision = rig.submit("a" if i % 2 else "b")
        assert decision.approved
        rig.venue_rejects(decision)
    assert rig.risk.global_breaker is not None
    assert rig.risk.global_breaker.state is BreakerState.OPEN
    for strategy in ("a", "b"):
        decision = rig.submit(strategy)
        assert not decision.approved and decision.check == "breaker"


def test_one_strategys_flood_of_faults_never_opens_the_global_breaker() -> None:
    rig = Rig(RiskLimits(max_orders_per_minute_strategy=2), {"flood": "flood", "calm": "calm"})
    for _ in range(40):
        rig.submit("flood")
    assert rig.risk.strategies["flood"].breaker is not None
    assert rig.risk.strategies["flood"].breaker.state is BreakerState.OPEN
    assert rig.risk.global_breaker is not None
    assert rig.risk.global_breaker.state is BreakerState.CLOSED
    assert rig.submit("calm").approved
