"""Properties of the RiskEngine over random sequences of intents and world events.

Hypothesis drives two strategies of one engine (each with its own capital pool) through
intents (units, fraction, close), fills, partial fills, cancels and rejects of pending
orders, price moves, data gaps, invalidated feeds, trading-state changes at global and
strategy scope, and kill-switch trips, approvals and resets. A small independent model
of the spec (pending orders count as if filled, fractions estimated from pool equity at
the last price) predicts every decision; the safety properties are asserted on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from predator.core.bus import MessageBus
from predator.core.clock import NS_PER_SECOND, TimeWarp
from predator.core.events import Event
from predator.core.numbers import from_decimal
from predator.execution.execution_engine import ExecuteOrder
from predator.execution.order import OrderCanceled, OrderFilled, OrderRejected
from predator.ledger.ledger import Ledger
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.market.status import MarketDataInvalidated, MarketDataRestored
from predator.portfolio.portfolio import Portfolio
from predator.risk import (
    EmergencyStop,
    KillSwitchReset,
    KillSwitchTripped,
    OperatorApproved,
    ResumeNotApproved,
    RiskDecision,
    RiskEngine,
    RiskLimits,
    SubmitOrder,
    TradingState,
)
from predator.risk.emergency_stop import NotTripped
from predator.venue.orders import Liquidity, OrderRequest, Side

START_NS = 1_700_000_000 * NS_PER_SECOND
SYMBOL = "GOOG"
INSTRUMENT = Instrument(symbol=SYMBOL)
FACTOR = INSTRUMENT.notional_factor
CAPITAL = from_decimal(Decimal(100_000), INSTRUMENT.money_precision)
STALE_NS = 180 * NS_PER_SECOND
CAP = Fraction(1)
MAX_ORDER_QUANTITY = 1_500
ENGINE = "trend"
STRATEGIES = ("alpha", "beta")
KILL_SCOPES = ("global", f"engine:{ENGINE}", "strategy:alpha", "strategy:beta")
STATE_SCOPES = ("global", "strategy:alpha", "strategy:beta")
_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass
class Pending:
    request: OrderRequest
    filled: int = 0


@dataclass
class Model:
    """The spec's view of the world, kept by the test independently of the engine."""

    portfolios: dict[str, Portfolio]
    price: int = 10_000
    last_data_ts: int = START_NS
    invalid: bool = False
    states: dict[str, TradingState] = field(
        default_factory=lambda: dict.fromkeys(STATE_SCOPES, TradingState.ACTIVE)
    )
    tripped: set[str] = field(default_factory=set)
    approved_since_trip: set[str] = field(default_factory=set)
    pending: dict[str, tuple[str, Pending]] = field(default_factory=dict)  # id -> (owner, ...)
    seen: set[str] = field(default_factory=set)

    # -- positions and exposure ----------------------------------------------------------
    def position(self, strategy: str) -> int:
        return self.portfolios[strategy].position_quantity(SYMBOL)

    def equity(self, strategy: str) -> int:
        return self.portfolios[strategy].equity({SYMBOL: self.price})

    def estimate(self, strategy: str, request: OrderRequest) -> int:
        """The quantity ``request`` would fill with now (fractions of pool equity)."""
        if request.close_position:
            return abs(self.position(strategy))
        if request.equity_fraction is None:
            return request.quantity
        budget = Fraction(request.equity_fraction) * self.equity(strategy)
        return max(0, floor(budget / (self.price * FACTOR)))

    def projected(self, strategy: str) -> int:
        """The position if every approved, unresolved order filled, in approval order."""
        projected = self.position(strategy)
        for owner, pending in self.pending.values():
            if owner != strategy:
                continue
            request = pending.request
            if request.close_position:
                projected = 0 if request.side * projected < 0 else projected
            else:
                left = max(0, self.estimate(strategy, request) - pending.filled)
                projected += request.side * left
        return projected

    def reduces(self, strategy: str, request: OrderRequest) -> bool:
        projected = self.projected(strategy)
        if request.equity_fraction is not None or projected * request.side >= 0:
            return False
        return request.close_position or request.quantity <= abs(projected)

    def exposure_after(self, strategy: str, request: OrderRequest) -> int:
        after = self.projected(strategy) + request.side * self.estimate(strategy, request)
        return abs(after) * self.price * FACTOR

    # -- the world -----------------------------------------------------------------------
    def effective_state(self, strategy: str) -> TradingState:
        return max(
            (self.states["global"], self.states[f"strategy:{strategy}"]),
            key=_SEVERITY.__getitem__,
        )

    def killed(self, strategy: str) -> bool:
        return bool(self.tripped & {"global", f"engine:{ENGINE}", f"strategy:{strategy}"})

    def stale(self, now: int) -> bool:
        return now - self.last_data_ts > STALE_NS

    def expected(self, strategy: str, request: OrderRequest, now: int) -> str:
        """``approved`` or the name of the check that must deny ``request``."""
        if request.client_order_id in self.seen:
            return "duplicate"
        if self.killed(strategy):
            return "kill_switch"
        state = self.effective_state(strategy)
        if state is TradingState.HALTED:
            return "halted"
        reduces = self.reduces(strategy, request)
        if state is TradingState.REDUCING and not reduces:
            return "reducing"
        if not reduces and self.invalid:
            return "invalid_data"
        if not reduces and self.stale(now):
            return "stale_data"
        if self.estimate(strategy, request) > MAX_ORDER_QUANTITY:
            return "order_size"
        if not reduces:
            equity = self.equity(strategy)
            if equity <= 0 or self.exposure_after(strategy, request) > CAP * equity:
                return "exposure"
        return "approved"


class Rig:
    def __init__(self) -> None:
        self.clock = TimeWarp.virtual(START_NS)
        self.bus = bus = MessageBus()
        ledger = Ledger(INSTRUMENT.quote_currency, INSTRUMENT.money_precision)
        portfolios = {
            name: Portfolio(
                bus=bus,
                ledger=ledger,
                instruments=[INSTRUMENT],
                initial_cash=CAPITAL,
                ts=START_NS,
                account=name,
            )
            for name in STRATEGIES
        }
        self.model = Model(portfolios)
        self.kill_switch = EmergencyStop(self.clock, bus.publish)
        self.risk = RiskEngine(
            bus=bus,
            clock=self.clock,
            limits=RiskLimits(
                max_order_quantity=MAX_ORDER_QUANTITY,
                max_total_exposure=CAP,
                stale_data_ns=STALE_NS,
            ),
            kill_switch=self.kill_switch,
        )
        for name in STRATEGIES:
            self.risk.register_strategy(name, engine=ENGINE, portfolio=portfolios[name])
        self.events: list[Event] = []
        bus.subscribe(Event, self.events.append)
        self.executed: list[str] = []
        bus.register(ExecuteOrder, self._execute)
        self.intents: list[str] = []
        self._submitting: tuple[str, OrderRequest] | None = None
        self._trades = 0
        self.bar(self.model.price)

    # -- the execution stand-in checks the safety properties at the moment of sending --
    def _execute(self, command: ExecuteOrder) -> bool:
        model = self.model
        strategy, request = command.strategy, command.request
        assert self._submitting == (strategy, request)
        now = self.clock.now_ns()
        # (a) nothing is sent while HALTED or while the strategy's scopes are killed
        assert model.effective_state(strategy) is not TradingState.HALTED
        assert not model.killed(strategy)
        assert self.kill_switch.blocks(strategy, ENGINE) is None
        reduces = model.reduces(strategy, request)
        if model.effective_state(strategy) is TradingState.REDUCING:
            # (b) in REDUCING only orders that shrink the projected position, never flip it
            before = model.projected(strategy)
            after = before + request.side * model.estimate(strategy, request)
            if request.close_position:
                after = 0
            assert reduces
            assert abs(after) < abs(before) and after * before >= 0
        if not reduces:
            # (f) no new exposure on stale or invalid data
            assert not model.invalid and not model.stale(now)
            # (c) at approval, gross exposure with the order is within the cap of equity
            assert model.exposure_after(strategy, request) <= CAP * model.equity(strategy)
        self.executed.append(request.client_order_id)
        return True

    # -- actions ----------------------------------------------------------------------------
    def bar(self, price: int) -> None:
        now = self.clock.now_ns()
        self.model.price, self.model.last_data_ts = price, now
        self.bus.publish(Bar(ts=now, symbol=SYMBOL, open=price, high=price, low=price, close=price))

    def submit(self, strategy: str, request: OrderRequest) -> None:
        model = self.model
        expected = model.expected(strategy, request, self.clock.now_ns())
        decisions_before = sum(isinstance(e, RiskDecision) for e in self.events)
        self._submitting = (strategy, request)
        answer = self.bus.send(SubmitOrder(strategy=strategy, request=request))
        self._submitting = None
        self.intents.append(request.client_order_id)
        decisions = [e for e in self.events if isinstance(e, RiskDecision)][decisions_before:]
        # (e) exactly one decision per intent, and it says what the answer was
        assert len(decisions) == 1
        (decision,) = decisions
        assert decision.client_order_id == request.client_order_id
        assert decision.approved is answer
        assert decision.check == ("" if answer else expected)
        assert ("approved" if answer else decision.check) == expected
        event(f"decision: {expected}")
        model.seen.add(request.client_order_id)
        if answer:
            model.pending[request.client_order_id] = (strategy, Pending(request))

    def resolve(self, index: int, how: str) -> None:
        model = self.model
        if not model.pending:
            return
        client_order_id = list(model.pending)[index % len(model.pending)]
        strategy, pending = model.pending[client_order_id]
        request = pending.request
        now = self.clock.now_ns()
        if how == "cancel":
            self._publish_end(OrderCanceled, client_order_id, strategy, "canceled")
            return
        if how == "reject":
            self._publish_end(OrderRejected, client_order_id, strategy, "insufficient_margin")
            return
        if request.close_position:
            left = (
                abs(model.position(strategy)) if request.side * model.position(strategy) < 0 else 0
            )
        else:
            left = model.estimate(strategy, request) - pending.filled
        if left <= 0:
            self._publish_end(OrderRejected, client_order_id, strategy, "no_position")
            return
        part = left // 2 if how == "partial" and left > 1 and not request.close_position else left
        self._trades += 1
        if part == left:
            del model.pending[client_order_id]
        else:
            pending.filled += part
        self.bus.publish(
            OrderFilled(
                ts=now,
                client_order_id=client_order_id,
                strategy=strategy,
                trade_id=f"T{self._trades}",
                account=strategy,
                symbol=SYMBOL,
                side=request.side,
                price=model.price,
                quantity=part,
                fee=0,
                liquidity=Liquidity.TAKER,
                leaves_quantity=left - part,
            )
        )

    def _publish_end(
        self, kind: type[Any], client_order_id: str, strategy: str, reason: str
    ) -> None:
        del self.model.pending[client_order_id]
        self.bus.publish(
            kind(
                ts=self.clock.now_ns(),
                client_order_id=client_order_id,
                strategy=strategy,
                reason=reason,
            )
        )

    def trip(self, scope: str) -> None:
        if scope in self.model.tripped:
            return  # a second trip of a tripped scope is a separate spec (test_risk_rules)
        assert self.kill_switch.trip(scope, "hypothesis", actor="chaos") is True
        self.model.tripped.add(scope)
        self.model.approved_since_trip.discard(scope)

    def approve(self, scope: str) -> None:
        if scope not in self.model.tripped:
            with pytest.raises(NotTripped):
                self.kill_switch.approve(scope, "operator", "checked")
            return
        self.kill_switch.approve(scope, "operator", "checked")
        self.model.approved_since_trip.add(scope)

    def approve_and_reset(self, scope: str) -> None:
        self.approve(scope)
        self.reset(scope)

    def reset(self, scope: str) -> None:
        model = self.model
        if scope not in model.tripped:
            with pytest.raises(NotTripped):
                self.kill_switch.reset(scope, "operator", "resume")
        elif scope not in model.approved_since_trip:
            # (d) no reset without an approval recorded after the latest trip
            with pytest.raises(ResumeNotApproved):
                self.kill_switch.reset(scope, "operator", "resume")
            assert self.kill_switch.is_tripped(scope)
        else:
            self.kill_switch.reset(scope, "operator", "resume")
            model.tripped.discard(scope)
            model.approved_since_trip.discard(scope)
        assert set(self.kill_switch.tripped_scopes()) == model.tripped


_strategy = st.sampled_from(STRATEGIES)
_side = st.sampled_from([Side.BUY, Side.SELL])
_quantity = st.one_of(
    st.integers(min_value=1, max_value=60), st.integers(min_value=300, max_value=2_000)
)
_intent = st.tuples(
    st.just("intent"),
    _strategy,
    _side,
    st.sampled_from(["units", "units", "units", "fraction", "close", "to_cap"]),
    _quantity,
    st.sampled_from(["0.05", "0.3", "1"]),
    st.integers(min_value=0, max_value=9),  # 0: reuse an earlier client order id
)
_resolve = st.tuples(
    st.just("resolve"),
    st.integers(min_value=0, max_value=50),
    st.sampled_from(["fill", "fill", "partial", "cancel", "reject"]),
)
_price = st.tuples(st.just("price"), st.integers(min_value=5_000, max_value=20_000))
_gap = st.tuples(st.just("gap"), st.sampled_from([-1, 0, 1, 10 * STALE_NS]))
_tick = st.tuples(st.just("tick"), st.integers(min_value=1, max_value=30 * NS_PER_SECOND))
_data = st.tuples(st.sampled_from(["invalidate", "restore", "restore"]))
_state = st.tuples(
    st.just("state"),
    st.sampled_from(STATE_SCOPES),
    st.sampled_from(
        [TradingState.ACTIVE, TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED]
    ),
)
_kill = st.tuples(
    st.sampled_from(["trip", "approve", "reset", "approve_and_reset", "approve_and_reset"]),
    st.sampled_from(KILL_SCOPES),
)
# Weighted by repetition: mostly intents and order outcomes, now and then the world moves.
_action = st.sampled_from(
    [*[_intent] * 6, *[_resolve] * 3, _price, _price, _gap, _tick, _data, _state, _kill]
).flatmap(lambda action: action)


@settings(max_examples=300, deadline=None)
@given(actions=st.lists(_action, min_size=20, max_size=100))
def test_the_risk_engine_keeps_its_safety_properties_over_any_sequence(
    actions: list[tuple[Any, ...]],
) -> None:
    rig = Rig()
    model = rig.model
    numbers = {name: 0 for name in STRATEGIES}
    for action in actions:
        kind = action[0]
        if kind == "intent":
            _, strategy, side, sizing, quantity, fraction, fresh = action
            numbers[strategy] += 1
            client_order_id = f"{strategy}-{numbers[strategy]}"
            if not fresh and rig.intents:
                client_order_id = rig.intents[quantity % len(rig.intents)]
            if sizing == "to_cap":  # right at the exposure cap, or one unit beyond it
                room = floor(CAP * model.equity(strategy) / (model.price * FACTOR))
                quantity = max(1, room - side * model.projected(strategy) + quantity % 2)
            request = OrderRequest(
                client_order_id=client_order_id,
                symbol=SYMBOL,
                side=side,
                quantity=quantity if sizing in ("units", "to_cap") else 0,
                equity_fraction=fraction if sizing == "fraction" else None,
                close_position=sizing == "close",
                reduce_only=sizing == "close",
                account=strategy,
            )
            rig.submit(strategy, request)
        elif kind == "resolve":
            rig.resolve(action[1], action[2])
        elif kind == "price":
            rig.clock.advance(NS_PER_SECOND)
            rig.bar(action[1])
        elif kind == "gap":
            target = model.last_data_ts + STALE_NS + action[1]
            if target > rig.clock.now_ns():
                rig.clock.set(target)
        elif kind == "tick":
            rig.clock.advance(action[1])
        elif kind == "invalidate":
            model.invalid = True
            rig.bus.publish(
                MarketDataInvalidated(ts=rig.clock.now_ns(), symbol=SYMBOL, reason="gap")
            )
        elif kind == "restore":
            model.invalid = False
            rig.bus.publish(MarketDataRestored(ts=rig.clock.now_ns(), symbol=SYMBOL))
        elif kind == "state":
            _, scope, state = action
            model.states[scope] = state
            rig.risk.set_state(state, actor="hypothesis", reason="random walk", scope=scope)
        else:
            getattr(rig, kind)(action[1])
        for strategy in STRATEGIES:  # the engine counts pending orders as the spec does
            assert rig.risk.projected_position(SYMBOL, strategy) == model.projected(strategy)

    # (e) one decision per intent, in order; approvals are exactly what reached execution
    decisions = [e for e in rig.events if isinstance(e, RiskDecision)]
    assert [d.client_order_id for d in decisions] == rig.intents
    assert [d.client_order_id for d in decisions if d.approved] == rig.executed
    assert sorted(rig.risk.pending_orders()) == sorted(model.pending)
    # (d) every reset in the log follows an approval given after the scope's latest trip
    approved_after_trip: set[str] = set()
    for fact in rig.events:
        if isinstance(fact, KillSwitchTripped):
            approved_after_trip.discard(fact.scope)
        elif isinstance(fact, OperatorApproved):
            approved_after_trip.add(fact.scope)
        elif isinstance(fact, KillSwitchReset):
            assert fact.scope in approved_after_trip
            approved_after_trip.discard(fact.scope)
