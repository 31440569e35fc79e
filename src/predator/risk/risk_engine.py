"""The RiskEngine (the "CRO"): every order intent passes it, or no order is sent.

It holds the trading state per scope (global, engine, strategy, instrument), runs the
pre-trade checks, feeds each strategy's circuit breaker, consults the kill switches
and protections, and heartbeats so execution can fail closed if it goes silent. Each
decision is a journaled event with its reason. Exposure counts every approved order
that is not yet resolved (open or unknown) as if it had filled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from enum import StrEnum
from fractions import Fraction
from math import floor
from typing import Protocol

import msgspec

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.core.events import Command, Event
from predator.core.numbers import parse_fraction
from predator.execution.execution_engine import ExecuteOrder
from predator.execution.heartbeat import CroHeartbeat
from predator.execution.order import OrderCanceled, OrderFilled, OrderRejected
from predator.market.bar import Bar
from predator.market.status import MarketDataInvalidated, MarketDataRestored
from predator.portfolio.portfolio import Portfolio
from predator.portfolio.position import ClosedTrade
from predator.risk.circuit_breaker import CircuitBreaker
from predator.risk.protections import Protections
from predator.venue.orders import OrderRequest

__all__ = [
    "CroHeartbeat",
    "RiskDecision",
    "RiskEngine",
    "RiskLimits",
    "StrategyRisk",
    "SubmitOrder",
    "TradingState",
    "TradingStateChanged",
]

MINUTE_NS = 60_000_000_000


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    """Only orders that reduce exposure pass."""
    HALTED = "halted"
    """No new orders pass (cancels only)."""


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class SubmitOrder(Command, frozen=True, kw_only=True):
    """A strategy's order intent, addressed to the risk engine."""

    strategy: str
    request: OrderRequest
    actor: str = "strategy"
    """Who asks: the strategy, or ``emergency_stop`` flattening a killed scope."""


class RiskDecision(Event, frozen=True, kw_only=True):
    """The risk engine's verdict on one intent, with the reason."""

    client_order_id: str
    strategy: str
    approved: bool
    reason: str
    check: str = ""
    """Name of the check that denied it (``rate_limit``, ``stale_data``...); empty if approved."""


class TradingStateChanged(Event, frozen=True, kw_only=True):
    """Trading state of ``scope`` moved; ``actor`` and ``reason`` explain every change."""

    scope: str = "global"
    previous: TradingState
    state: TradingState
    actor: str
    reason: str


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Pre-trade limits in exact units; ``None`` disables a limit.

    Quantities are at the instrument's size precision, notionals in money units,
    fractions as ``Fraction``; durations in ns. Built from ``RiskConfig`` by the node.
    """

    max_order_quantity: int | None = None
    max_order_notional: int | None = None
    max_position_quantity: int | None = None
    max_engine_position_quantity: int | None = None
    max_total_exposure: Fraction | None = None
    max_leverage: Fraction | None = None
    price_band: Fraction | None = None
    max_orders_per_minute_strategy: int | None = None
    max_orders_per_minute_engine: int | None = None
    stale_data_ns: int | None = None
    heartbeat_interval_ns: int = 5_000_000_000
    kill_after_breaker_trips: int | None = 3


class KillSwitch(Protocol):
    """What the engine needs from the kill switches (see ``EmergencyStop``)."""

    def blocks(self, strategy: str, engine: str) -> str | None: ...

    def trip(self, scope: str, reason: str, *, actor: str, trigger: str) -> object: ...


class StrategyRisk:
    """The risk engine's record of one strategy: its pool, engine, breaker and counters."""

    __slots__ = (
        "approved",
        "breaker",
        "denied",
        "denied_by",
        "engine",
        "name",
        "portfolio",
        "protections",
        "sent_times",
        "trades_seen",
    )

    def __init__(
        self,
        name: str,
        engine: str,
        portfolio: Portfolio,
        breaker: CircuitBreaker | None,
        protections: Protections | None,
    ) -> None:
        self.name = name
        self.engine = engine
        self.portfolio = portfolio
        self.breaker = breaker
        self.protections = protections
        self.sent_times: deque[int] = deque()
        self.approved = 0
        self.denied = 0
        self.denied_by: dict[str, int] = {}
        self.trades_seen = 0


class _Denied(Exception):
    def __init__(self, check: str, reason: str) -> None:
        super().__init__(reason)
        self.check = check
        self.reason = reason


class RiskEngine:
    """Pre-trade authority over every order intent (the seed's CRO)."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        clock: Clock,
        portfolio: Portfolio | None = None,
        limits: RiskLimits | None = None,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self.limits = limits or RiskLimits()
        self.kill_switch = kill_switch
        self.states: dict[str, TradingState] = {"global": TradingState.ACTIVE}
        self._all_active = True  # no scope has ever left ACTIVE (the fast path)
        self.strategies: dict[str, StrategyRisk] = {}
        self._default_portfolio = portfolio
        self._seen_ids: set[str] = set()
        self.sent_before_restart: set[str] = set()
        self._rate_restored: set[str] = set()
        """Ids a restarted node knows went out; their replayed intents are not re-sent."""
        # Approved orders not yet resolved: their exposure counts as if filled.
        self._pending: dict[str, tuple[str, OrderRequest]] = {}
        self._pending_filled: dict[str, int] = {}
        self._engine_sent: dict[str, deque[int]] = {}
        self.last_price: dict[str, int] = {}
        self.last_data_ts: dict[str, int] = {}
        self.invalid_data: dict[str, str] = {}
        self._last_heartbeat: int | None = None
        self.approved = 0
        self.denied = 0
        self.denied_by: dict[str, int] = {}
        self.on_strategy_killed: list[Callable[[str, str], None]] = []
        self.engine_breakers: dict[str, CircuitBreaker] = {}
        """Per engine: fed by its strategies' faults and venue failures."""
        self.global_breaker: CircuitBreaker | None = None
        """System-wide: fed by venue failures only (one strategy's bad behaviour is that
        strategy's problem, not the system's)."""
        bus.register(SubmitOrder, self._on_submit)
        bus.subscribe(OrderFilled, self._on_fill)
        bus.subscribe(OrderCanceled, self._on_failed)
        bus.subscribe(OrderRejected, self._on_failed)
        bus.subscribe(Bar, self._on_bar)
        bus.subscribe(MarketDataInvalidated, self._on_invalid)
        bus.subscribe(MarketDataRestored, self._on_restored)

    # -- registration -------------------------------------------------------------------
    def register_strategy(
        self,
        name: str,
        *,
        engine: str | None = None,
        portfolio: Portfolio | None = None,
        breaker: CircuitBreaker | None = None,
        protections: Protections | None = None,
    ) -> StrategyRisk:
        """Declare a strategy, its engine, its capital pool and its breaker."""
        pool = portfolio or self._default_portfolio
        if pool is None:
            raise ValueError(f"strategy {name!r} needs a portfolio (its capital pool)")
        record = StrategyRisk(name, engine or name, pool, breaker, protections)
        self.strategies[name] = record
        for scope in (f"engine:{record.engine}", f"strategy:{name}"):
            self.states.setdefault(scope, TradingState.ACTIVE)
        return record

    def _strategy(self, name: str) -> StrategyRisk:
        record = self.strategies.get(name)
        if record is None:
            if self._default_portfolio is None:
                raise _Denied("unknown_strategy", f"unknown strategy {name}")
            record = self.register_strategy(name)
        return record

    # -- trading state --------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        """The global trading state."""
        return self.states["global"]

    def set_state(
        self, state: TradingState, *, actor: str, reason: str, scope: str = "global"
    ) -> None:
        """Change the trading state of ``scope``; journaled with who and why."""
        previous = self.states.get(scope, TradingState.ACTIVE)
        if state is previous:
            return
        self.states[scope] = state
        self._all_active = False  # the fast path is off for good once anything changed
        self._bus.publish(
            TradingStateChanged(
                ts=self._clock.now_ns(),
                scope=scope,
                previous=previous,
                state=state,
                actor=actor,
                reason=reason,
            )
        )

    def halt(self, *, actor: str, reason: str, scope: str = "global") -> None:
        """Stop all new orders in ``scope``."""
        self.set_state(TradingState.HALTED, actor=actor, reason=reason, scope=scope)

    def effective_state(self, strategy: str, engine: str, symbol: str) -> TradingState:
        """The most restrictive state among global, engine, strategy and instrument."""
        if self._all_active:
            return TradingState.ACTIVE
        states = self.states
        worst = TradingState.ACTIVE
        for scope in ("global", f"engine:{engine}", f"strategy:{strategy}", f"instrument:{symbol}"):
            state = states.get(scope)
            if state is not None and _SEVERITY[state] > _SEVERITY[worst]:
                worst = state
        return worst

    # -- heartbeat ------------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Tell execution the CRO is alive (at most once per heartbeat interval)."""
        now = self._clock.now_ns()
        last = self._last_heartbeat
        if last is None or now - last >= self.limits.heartbeat_interval_ns:
            self._last_heartbeat = now
            self._bus.publish(CroHeartbeat(ts=now))

    # -- market data ----------------------------------------------------------------------
    def _on_bar(self, bar: Bar) -> None:
        # No heartbeat here: one goes out with every approval (and from a live timer),
        # which is when execution needs to know the CRO is alive.
        self.last_price[bar.symbol] = bar.close
        self.last_data_ts[bar.symbol] = bar.ts

    def _on_invalid(self, event: MarketDataInvalidated) -> None:
        self.invalid_data[event.symbol] = event.reason

    def _on_restored(self, event: MarketDataRestored) -> None:
        self.invalid_data.pop(event.symbol, None)

    # -- exposure -------------------------------------------------------------------------
    def _estimated_quantity(self, record: StrategyRisk, request: OrderRequest) -> int:
        """Quantity of ``request`` as it would fill now (fraction orders estimated)."""
        if request.close_position:
            return abs(record.portfolio.position_quantity(request.symbol))
        if request.equity_fraction is None:
            return request.quantity
        price = self.last_price.get(request.symbol)
        if not price:
            return 0
        portfolio = record.portfolio
        factor = portfolio.instruments[request.symbol].notional_factor
        equity = portfolio.equity(self.last_price)
        return max(0, floor(parse_fraction(request.equity_fraction) * equity / (price * factor)))

    def projected_position(self, symbol: str, strategy: str | None = None) -> int:
        """Position if every approved, unresolved order filled in full.

        For one strategy's pool (``strategy`` given) or, summed, for all pools.
        """
        names = [strategy] if strategy is not None else list(self.strategies)
        total = 0
        for name in names:
            record = self.strategies.get(name)
            if record is None:
                continue
            projected = record.portfolio.position_quantity(symbol)
            for client_order_id, (owner, request) in self._pending.items():
                if owner != name or request.symbol != symbol:
                    continue
                if request.close_position:
                    projected = 0 if request.side * projected < 0 else projected
                    continue
                left = self._pending_quantity(record, client_order_id, request)
                projected += request.side * left
            total += projected
        return total

    def _pending_quantity(
        self, record: StrategyRisk, client_order_id: str, request: OrderRequest
    ) -> int:
        quantity = self._estimated_quantity(record, request)
        return max(0, quantity - self._pending_filled.get(client_order_id, 0))

    def gross_exposure(self, record: StrategyRisk, symbol_delta: tuple[str, int] | None) -> int:
        """Money value of the pool's projected positions, plus a hypothetical change."""
        exposure = 0
        portfolio = record.portfolio
        for symbol, instrument in portfolio.instruments.items():
            projected = self.projected_position(symbol, record.name)
            if symbol_delta is not None and symbol_delta[0] == symbol:
                projected += symbol_delta[1]
            price = self.last_price.get(symbol)
            if projected and price:
                exposure += abs(projected) * price * instrument.notional_factor
        return exposure

    def _reduces_exposure(self, record: StrategyRisk, request: OrderRequest) -> bool:
        if request.equity_fraction is not None:
            return False
        projected = self.projected_position(request.symbol, record.name)
        if request.close_position:
            return projected * request.side < 0
        return projected * request.side < 0 and request.quantity <= abs(projected)

    # -- the checks -------------------------------------------------------------------------
    def check(self, strategy: str, request: OrderRequest) -> tuple[str, str] | None:
        """``(check, reason)`` that denies ``request``, or ``None`` to approve it."""
        try:
            self._check(self._strategy(strategy), request)
        except _Denied as denied:
            return denied.check, denied.reason
        return None

    def _check(
        self, record: StrategyRisk, request: OrderRequest, emergency_flatten: bool = False
    ) -> None:
        now = self._clock.now_ns()
        limits = self.limits
        symbol = request.symbol
        if request.client_order_id in self._seen_ids:
            raise _Denied("duplicate", f"duplicate client order id {request.client_order_id}")
        if emergency_flatten:
            # The kill switch flattening its own scope: only a close of a real position
            # passes; every other check still applies to it below.
            if not (request.close_position and self._reduces_exposure(record, request)):
                raise _Denied("flatten", "emergency flatten must close an existing position")
        elif self.kill_switch is not None:
            why = self.kill_switch.blocks(record.name, record.engine)
            if why:
                raise _Denied("kill_switch", f"kill switch: {why}")
        state = self.effective_state(record.name, record.engine, symbol)
        if state is TradingState.HALTED and not emergency_flatten:
            raise _Denied("halted", "trading halted")
        if symbol not in record.portfolio.instruments:
            raise _Denied("unknown_instrument", f"unknown instrument {symbol}")
        reduces = self._reduces_exposure(record, request)
        if state is TradingState.REDUCING and not reduces:
            raise _Denied("reducing", "trading is reducing-only and this order adds exposure")
        breaker = record.breaker
        if breaker is not None and not breaker.allow():
            raise _Denied("breaker", f"circuit breaker open (strategy:{record.name})")
        engine_breaker = self.engine_breakers.get(record.engine)
        if engine_breaker is not None and not engine_breaker.allow():
            raise _Denied("breaker", f"circuit breaker open (engine:{record.engine})")
        if self.global_breaker is not None and not self.global_breaker.allow():
            raise _Denied("breaker", "circuit breaker open (global)")
        protections = record.protections
        if protections is not None and not reduces:
            lock = protections.locked(now)
            if lock is not None:
                raise _Denied("protection", f"protection {lock.name}: {lock.reason}")
        if not reduces:
            if symbol in self.invalid_data:
                raise _Denied("invalid_data", f"market data invalid: {self.invalid_data[symbol]}")
            last_ts = self.last_data_ts.get(symbol)
            if last_ts is None:
                raise _Denied("stale_data", f"no market data for {symbol} yet")
            stale_ns = limits.stale_data_ns
            if stale_ns is not None and now - last_ts > stale_ns:
                age = (now - last_ts) // 1_000_000_000
                raise _Denied("stale_data", f"stale market data for {symbol}: last {age}s ago")
        price = self.last_price.get(symbol)
        band = limits.price_band
        # The band catches fat-finger limit prices; stop triggers may sit far away.
        limit = request.limit_price
        if band is not None and price and limit is not None and abs(limit - price) > band * price:
            raise _Denied("price_band", f"limit {limit} outside the {band} band around {price}")
        self._check_rates(record, now)
        # Fat-finger limits apply to every order, reducing ones included.
        quantity = self._estimated_quantity(record, request)
        factor = record.portfolio.instruments[symbol].notional_factor
        if limits.max_order_quantity is not None and quantity > limits.max_order_quantity:
            raise _Denied(
                "order_size", f"order quantity {quantity} above limit {limits.max_order_quantity}"
            )
        if limits.max_order_notional is not None and price:
            notional = quantity * price * factor
            if notional > limits.max_order_notional:
                raise _Denied("order_notional", f"order notional {notional} above limit")
        if reduces:
            return
        after = self.projected_position(symbol, record.name) + request.side * quantity
        if limits.max_position_quantity is not None and abs(after) > limits.max_position_quantity:
            raise _Denied("position_limit", f"position {after} would exceed limit")
        if limits.max_engine_position_quantity is not None:
            engine_after = request.side * quantity + sum(
                self.projected_position(symbol, name)
                for name, other in self.strategies.items()
                if other.engine == record.engine
            )
            if abs(engine_after) > limits.max_engine_position_quantity:
                raise _Denied("engine_position_limit", f"engine position {engine_after} too big")
        if limits.max_total_exposure is not None or limits.max_leverage is not None:
            equity = record.portfolio.equity(self.last_price)
            exposure = self.gross_exposure(record, (symbol, request.side * quantity))
            cap = min(
                (x for x in (limits.max_total_exposure, limits.max_leverage) if x is not None),
            )
            if equity <= 0 or exposure > cap * equity:
                share = float(Fraction(exposure, max(equity, 1)))
                raise _Denied("exposure", f"exposure would be {share:.4f} of equity (limit {cap})")

    def _check_rates(self, record: StrategyRisk, now: int) -> None:
        limits = self.limits
        window_start = now - MINUTE_NS
        sent = record.sent_times
        while sent and sent[0] <= window_start:
            sent.popleft()
        strategy_limit = limits.max_orders_per_minute_strategy
        if strategy_limit is not None and len(sent) >= strategy_limit:
            raise _Denied("rate_limit", f"strategy {record.name}: over {strategy_limit} orders/min")
        engine_sent = self._engine_sent.setdefault(record.engine, deque())
        while engine_sent and engine_sent[0] <= window_start:
            engine_sent.popleft()
        engine_limit = limits.max_orders_per_minute_engine
        if engine_limit is not None and len(engine_sent) >= engine_limit:
            raise _Denied("engine_rate_limit", f"engine {record.engine}: over {engine_limit}/min")

    # -- the command --------------------------------------------------------------------------
    def _on_submit(self, command: SubmitOrder) -> bool:
        request = command.request
        now = self._clock.now_ns()
        if request.client_order_id in self.sent_before_restart:
            # The same intent, replayed after a restart: it already went out (journaled or
            # adopted from the venue). Idempotent: acknowledged once more, never re-sent.
            self.sent_before_restart.discard(request.client_order_id)
            owner = self.strategies.get(command.strategy)
            if owner is not None and request.client_order_id not in self._rate_restored:
                owner.sent_times.append(now)
                self._engine_sent.setdefault(owner.engine, deque()).append(now)
            self._bus.publish(
                RiskDecision(
                    ts=now,
                    client_order_id=request.client_order_id,
                    strategy=command.strategy,
                    approved=True,
                    reason="already sent before the restart",
                    check="resent",
                )
            )
            return True
        try:
            record = self._strategy(command.strategy)
            self._check(record, request, command.actor == "emergency_stop")
        except _Denied as denied:
            self._seen_ids.add(request.client_order_id)
            self._deny(command.strategy, request, denied.check, denied.reason)
            return False
        self._seen_ids.add(request.client_order_id)
        self.approved += 1
        record.approved += 1
        record.sent_times.append(now)
        self._engine_sent.setdefault(record.engine, deque()).append(now)
        self._pending[request.client_order_id] = (record.name, request)
        self._bus.publish(
            RiskDecision(
                ts=now,
                client_order_id=request.client_order_id,
                strategy=command.strategy,
                approved=True,
                reason="approved",
            )
        )
        self.heartbeat()
        self._bus.send(ExecuteOrder(strategy=command.strategy, request=request))
        return True

    def _deny(self, strategy: str, request: OrderRequest, check: str, reason: str) -> None:
        self.denied += 1
        self.denied_by[check] = self.denied_by.get(check, 0) + 1
        self._bus.publish(
            RiskDecision(
                ts=self._clock.now_ns(),
                client_order_id=request.client_order_id,
                strategy=strategy,
                approved=False,
                reason=reason,
                check=check,
            )
        )
        record = self.strategies.get(strategy)
        if record is None:
            return
        record.denied += 1
        record.denied_by[check] = record.denied_by.get(check, 0) + 1
        # Denials by the strategy's own behaviour count against its breaker; denials
        # caused by the world (halts, stale data, kill switches) do not.
        if check in _STRATEGY_FAULTS:
            engine_breaker = self.engine_breakers.get(record.engine)
            if engine_breaker is not None:
                engine_breaker.record_failure(f"{record.name}: {reason}")
            if record.breaker is not None:
                breaker = record.breaker
                trips_before = breaker.trips
                breaker.record_failure(reason)
                if breaker.trips != trips_before:
                    self._breaker_tripped(record)

    def _breaker_tripped(self, record: StrategyRisk) -> None:
        limit = self.limits.kill_after_breaker_trips
        trips = record.breaker.trips if record.breaker is not None else 0
        if limit is not None and trips >= limit and self.kill_switch is not None:
            self.kill_switch.trip(
                f"strategy:{record.name}",
                f"circuit breaker opened {trips} times",
                actor="risk",
                trigger="breaker_trips",
            )
            for callback in self.on_strategy_killed:
                callback(record.name, f"circuit breaker opened {trips} times")

    # -- order outcomes -----------------------------------------------------------------------
    def _on_fill(self, fill: OrderFilled) -> None:
        pending = self._pending.get(fill.client_order_id)
        if pending is None:
            return
        if fill.leaves_quantity == 0:
            self._resolved(fill.client_order_id)
            # Success is the venue's answer, not our approval: an order the venue
            # rejects must count as a failure only, or a broken strategy never trips.
            owner = self.strategies.get(pending[0])
            if owner is not None:
                for breaker in self._breakers_of(owner):
                    breaker.record_success()
        else:
            filled = self._pending_filled.get(fill.client_order_id, 0) + fill.quantity
            self._pending_filled[fill.client_order_id] = filled
        record = self.strategies.get(pending[0])
        if record is None:
            return
        trades = record.portfolio.closed_trades
        while record.trades_seen < len(trades):
            trade = trades[record.trades_seen]
            record.trades_seen += 1
            self._on_trade_closed(record, trade)

    def _on_trade_closed(self, record: StrategyRisk, trade: ClosedTrade) -> None:
        if record.breaker is not None:
            trips_before = record.breaker.trips
            record.breaker.record_trade(trade.pnl)
            if record.breaker.trips != trips_before:
                self._breaker_tripped(record)
        if record.protections is not None:
            record.protections.on_trade_closed(trade, False)

    def _on_failed(self, event: OrderCanceled | OrderRejected) -> None:
        pending = self._pending.get(event.client_order_id)
        self._resolved(event.client_order_id)
        if pending is None or event.reason in _WORLD_OUTCOMES:
            return
        record = self.strategies.get(pending[0])
        if record is None:
            return
        # A venue failure counts for the strategy, its engine and the whole system.
        for breaker in self._breakers_of(record):
            if breaker is not record.breaker:
                breaker.record_failure(f"{record.name}: venue {event.reason}")
        if record.breaker is not None:
            trips_before = record.breaker.trips
            record.breaker.record_failure(f"venue: {event.reason}")
            if record.breaker.trips != trips_before:
                self._breaker_tripped(record)

    def _breakers_of(self, record: StrategyRisk) -> list[CircuitBreaker]:
        """The strategy's, its engine's and the global breaker (those that exist)."""
        found = [record.breaker, self.engine_breakers.get(record.engine), self.global_breaker]
        return [b for b in found if b is not None]

    def _resolved(self, client_order_id: str) -> None:
        self._pending.pop(client_order_id, None)
        self._pending_filled.pop(client_order_id, None)

    def restore_state(self, scope: str, state: TradingState) -> None:
        """Take back a scope's trading state after a restart, publishing nothing."""
        self.states[scope] = state
        if state is not TradingState.ACTIVE:
            self._all_active = False

    def restore_rate_window(self, strategy: str, approved: Iterable[tuple[str, int]]) -> None:
        """Take back ``strategy``'s approvals ``(client order id, ts)`` of the last minute
        (journaled decisions), so a restart does not reset its order-rate limits. An order
        re-acknowledged after the restart whose approval is not among them (adopted from
        the venue: its decision was lost) is counted when it is acknowledged."""
        record = self.strategies.get(strategy)
        if record is None:
            return
        pairs = list(approved)
        self._rate_restored.update(cid for cid, _ts in pairs)
        times = sorted(ts for _cid, ts in pairs)
        record.sent_times.extend(times)
        engine = self._engine_sent.setdefault(record.engine, deque())
        engine.extend(times)
        if len(engine) > len(times):  # several strategies of one engine: keep time order
            self._engine_sent[record.engine] = deque(sorted(engine))

    def restore_seen(self, client_order_ids: Iterable[str]) -> None:
        """Mark ids used before a restart: an intent reusing one is a duplicate."""
        self._seen_ids.update(client_order_ids)

    def restore_order(
        self, strategy: str, request: OrderRequest, *, open_: bool, filled: int = 0
    ) -> None:
        """Take back an order after a restart: its id is used; if open, it still counts."""
        client_order_id = request.client_order_id
        self._seen_ids.add(client_order_id)
        if open_:
            self._pending[client_order_id] = (strategy, request)
            if filled:
                self._pending_filled[client_order_id] = filled

    def reopen_order(self, strategy: str, request: OrderRequest, *, filled: int) -> None:
        """A fill of this order was reversed: its unfilled rest counts as pending again,
        and closed trades the reversal took back are no longer counted as seen."""
        self.restore_order(strategy, request, open_=True, filled=filled)
        if not filled:
            self._pending_filled.pop(request.client_order_id, None)
        record = self.strategies.get(strategy)
        if record is not None:
            record.trades_seen = min(record.trades_seen, len(record.portfolio.closed_trades))

    def pending_orders(self) -> Iterable[str]:
        """Client order ids approved and not yet resolved (their exposure counts)."""
        return list(self._pending)


_WORLD_OUTCOMES = frozenset(
    {"canceled", "expired", "no_position", "execution_halted", "no_market_data"}
)
"""Order outcomes that say nothing about the strategy's behaviour (not breaker failures)."""


_STRATEGY_FAULTS = frozenset(
    {
        "duplicate",
        "rate_limit",
        "engine_rate_limit",
        "order_size",
        "order_notional",
        "position_limit",
        "engine_position_limit",
        "exposure",
        "price_band",
    }
)
