"""One spec per pre-trade rule of the RiskEngine, on a bus driven by a virtual TimeWarp.

Wiring: MessageBus + TimeWarp.virtual + one Portfolio (capital pool) per strategy + an
EmergencyStop + the RiskEngine; ``ExecuteOrder`` goes to a recorder standing in for
execution, and the tests publish Bars, OrderFilled, OrderCanceled and OrderRejected
themselves, so every assertion is about what the risk layer let through and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import count

import pytest

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
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    EmergencyStop,
    KillSwitchTripped,
    ResumeNotApproved,
    RiskDecision,
    RiskEngine,
    RiskLimits,
    SubmitOrder,
    TradingState,
)
from predator.venue.orders import Liquidity, OrderRequest, OrderType, Side

START_NS = 1_700_000_000 * NS_PER_SECOND
SECOND = NS_PER_SECOND
GOOG = Instrument(symbol="GOOG")
MSFT = Instrument(symbol="MSFT")
INSTRUMENTS = (GOOG, MSFT)
PRICE = 10_000  # 100.00 at price precision 2


def usd(amount: int | str) -> int:
    """``amount`` dollars in the instruments' money units."""
    return from_decimal(Decimal(amount), GOOG.money_precision)


CAPITAL = usd(100_000)  # 1,000 units at 100.00


@dataclass(frozen=True)
class Pool:
    """A strategy, the engine it belongs to and its capital pool."""

    name: str
    engine: str
    capital: int = CAPITAL


ALPHA = Pool("alpha", "trend")
BETA = Pool("beta", "trend")
GAMMA = Pool("gamma", "mean")
THREE_POOLS = (ALPHA, BETA, GAMMA)


class RiskRig:
    """The risk engine between a strategy stand-in (``submit``) and an execution recorder."""

    def __init__(
        self,
        limits: RiskLimits | None = None,
        pools: Iterable[Pool] = (ALPHA,),
        *,
        breakers: BreakerConfig | None = None,
        first_bar: bool = True,
    ) -> None:
        self.clock = TimeWarp.virtual(START_NS)
        self.bus = bus = MessageBus()
        ledger = Ledger(GOOG.quote_currency, GOOG.money_precision)
        self.pools = {pool.name: pool for pool in pools}
        # Portfolios subscribe to fills before the risk engine, as in the kernel.
        self.portfolios = {
            name: Portfolio(
                bus=bus,
                ledger=ledger,
                instruments=INSTRUMENTS,
                initial_cash=pool.capital,
                ts=START_NS,
                account=name,
            )
            for name, pool in self.pools.items()
        }
        self.kill_switch = EmergencyStop(self.clock, bus.publish)
        self.risk = RiskEngine(
            bus=bus, clock=self.clock, limits=limits or RiskLimits(), kill_switch=self.kill_switch
        )
        self.breakers: dict[str, CircuitBreaker] = {}
        for name, pool in self.pools.items():
            breaker = None
            if breakers is not None:
                breaker = CircuitBreaker(f"strategy:{name}", breakers, self.clock, bus.publish)
                self.breakers[name] = breaker
            self.risk.register_strategy(
                name, engine=pool.engine, portfolio=self.portfolios[name], breaker=breaker
            )
        self.executed: list[ExecuteOrder] = []
        bus.register(ExecuteOrder, self._execute)
        self.decisions: list[RiskDecision] = []
        bus.subscribe(RiskDecision, self.decisions.append)
        self.events: list[Event] = []
        bus.subscribe(Event, self.events.append)
        self.requests: dict[str, OrderRequest] = {}
        self._ids = count(1)
        self._trade_ids = count(1)
        if first_bar:
            self.bar(PRICE)
            self.bar(PRICE, symbol="MSFT")

    def _execute(self, command: ExecuteOrder) -> bool:
        self.executed.append(command)
        return True

    # -- the world ----------------------------------------------------------------------
    def advance(self, ns: int) -> None:
        self.clock.advance(ns)

    def bar(self, close: int, *, symbol: str = "GOOG") -> None:
        """A bar closing at ``close``, stamped with the current kernel time."""
        self.bus.publish(
            Bar(
                ts=self.clock.now_ns(),
                symbol=symbol,
                open=close,
                high=close,
                low=close,
                close=close,
            )
        )

    # -- the strategy side ----------------------------------------------------------------
    def request(
        self,
        strategy: str = "alpha",
        side: Side = Side.BUY,
        quantity: int = 10,
        *,
        client_order_id: str | None = None,
        symbol: str = "GOOG",
        fraction: str | None = None,
        close: bool = False,
        limit: int | None = None,
        stop: int | None = None,
    ) -> OrderRequest:
        if fraction is not None or close:
            quantity = 0
        if limit is not None and stop is not None:
            order_type = OrderType.STOP_LIMIT
        elif limit is not None:
            order_type = OrderType.LIMIT
        elif stop is not None:
            order_type = OrderType.STOP
        else:
            order_type = OrderType.MARKET
        return OrderRequest(
            client_order_id=client_order_id or f"{strategy}-{next(self._ids)}",
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity,
            equity_fraction=fraction,
            close_position=close,
            reduce_only=close,
            limit_price=limit,
            stop_price=stop,
            account=strategy,
        )

    def submit(
        self, strategy: str = "alpha", side: Side = Side.BUY, quantity: int = 10, **fields: object
    ) -> RiskDecision:
        """Send one intent; return the one RiskDecision it got (checked to be exactly one)."""
        request = self.request(strategy, side, quantity, **fields)  # type: ignore[arg-type]
        before = len(self.decisions)
        executed_before = len(self.executed)
        answer = self.bus.send(SubmitOrder(strategy=strategy, request=request))
        (decision,) = self.decisions[before:]
        assert decision.client_order_id == request.client_order_id
        assert decision.strategy == strategy
        assert decision.approved is answer
        sent = self.executed[executed_before:]
        assert sent == ([ExecuteOrder(strategy=strategy, request=request)] if answer else [])
        self.requests[request.client_order_id] = request
        return decision

    # -- the execution side -----------------------------------------------------------------
    def fill(
        self,
        client_order_id: str,
        quantity: int | None = None,
        *,
        leaves: int = 0,
        price: int | None = None,
    ) -> None:
        request = self.requests[client_order_id]
        self.bus.publish(
            OrderFilled(
                ts=self.clock.now_ns(),
                client_order_id=client_order_id,
                strategy=request.account,
                trade_id=f"T{next(self._trade_ids)}",
                account=request.account,
                symbol=request.symbol,
                side=request.side,
                price=price if price is not None else self.risk.last_price[request.symbol],
                quantity=request.quantity if quantity is None else quantity,
                fee=0,
                liquidity=Liquidity.TAKER,
                leaves_quantity=leaves,
            )
        )

    def position_of(self, strategy: str, side: Side, quantity: int) -> None:
        """Give ``strategy`` a filled position (approved and filled at the last price)."""
        decision = self.submit(strategy, side, quantity)
        assert decision.approved, decision.reason
        self.fill(decision.client_order_id)

    def cancel(self, client_order_id: str, reason: str = "canceled") -> None:
        request = self.requests[client_order_id]
        self.bus.publish(
            OrderCanceled(
                ts=self.clock.now_ns(),
                client_order_id=client_order_id,
                strategy=request.account,
                reason=reason,
            )
        )

    def reject(self, client_order_id: str, reason: str = "insufficient_margin") -> None:
        request = self.requests[client_order_id]
        self.bus.publish(
            OrderRejected(
                ts=self.clock.now_ns(),
                client_order_id=client_order_id,
                strategy=request.account,
                reason=reason,
            )
        )

    def resolve(self, client_order_id: str, how: str) -> None:
        if how == "cancel":
            self.cancel(client_order_id)
        elif how == "reject":
            self.reject(client_order_id)
        else:
            self.fill(client_order_id)

    @property
    def executed_ids(self) -> list[str]:
        return [command.request.client_order_id for command in self.executed]


def assert_denied(decision: RiskDecision, check: str, reason_part: str = "") -> None:
    assert (decision.approved, decision.check) == (False, check), decision
    assert reason_part in decision.reason
    assert decision.reason


def assert_approved(decision: RiskDecision) -> None:
    assert (decision.approved, decision.check, decision.reason) == (True, "", "approved"), decision


# -- duplicate client order id ------------------------------------------------------------


def test_a_second_intent_with_the_same_client_order_id_is_denied_as_duplicate() -> None:
    rig = RiskRig()
    assert_approved(rig.submit(client_order_id="o-1"))

    decision = rig.submit(side=Side.SELL, quantity=3, client_order_id="o-1")

    assert_denied(decision, "duplicate", "duplicate client order id o-1")
    assert rig.executed_ids == ["o-1"]


def test_a_client_order_id_used_by_another_strategy_is_a_duplicate_too() -> None:
    rig = RiskRig(pools=THREE_POOLS)
    assert_approved(rig.submit("alpha", client_order_id="shared"))

    assert_denied(rig.submit("gamma", client_order_id="shared"), "duplicate")
    assert rig.executed_ids == ["shared"]


# -- kill switch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "blocked"),
    [
        ("global", {"alpha", "beta", "gamma"}),
        ("engine:trend", {"alpha", "beta"}),
        ("strategy:alpha", {"alpha"}),
    ],
)
def test_a_tripped_kill_switch_denies_exactly_the_strategies_its_scope_covers(
    scope: str, blocked: set[str]
) -> None:
    rig = RiskRig(pools=THREE_POOLS)
    for name in rig.pools:
        rig.position_of(name, Side.BUY, 10)
    rig.kill_switch.trip(scope, "venue rejects everything", actor="alice")

    for name in rig.pools:
        buy = rig.submit(name, Side.BUY, 1)
        close = rig.submit(name, Side.SELL, close=True)
        if name in blocked:
            assert_denied(buy, "kill_switch", f"{scope} tripped by alice")
            assert_denied(close, "kill_switch")
        else:
            assert_approved(buy)
            assert_approved(close)


def test_a_kill_switch_reset_after_operator_approval_lets_the_strategy_trade_again() -> None:
    rig = RiskRig()
    rig.kill_switch.trip("strategy:alpha", "runaway", actor="alice")
    assert_denied(rig.submit(), "kill_switch")

    rig.kill_switch.approve("strategy:alpha", actor="bob", reason="fixed")
    rig.kill_switch.reset("strategy:alpha", actor="bob", reason="fixed")

    assert_approved(rig.submit())


def test_a_kill_switch_reset_without_approval_is_refused_and_orders_stay_denied() -> None:
    rig = RiskRig()
    rig.kill_switch.trip("global", "runaway", actor="alice")

    with pytest.raises(ResumeNotApproved):
        rig.kill_switch.reset("global", actor="alice", reason="let me trade")

    assert_denied(rig.submit(), "kill_switch")
    assert rig.executed == []


def test_a_new_trip_after_an_operator_approval_needs_a_new_approval() -> None:
    rig = RiskRig()
    rig.kill_switch.trip("strategy:alpha", "runaway orders", actor="alice")
    rig.kill_switch.approve("strategy:alpha", actor="bob", reason="runaway fixed")

    rig.kill_switch.trip("strategy:alpha", "reconciliation mismatch", actor="system")

    with pytest.raises(ResumeNotApproved):
        rig.kill_switch.reset("strategy:alpha", actor="bob", reason="resume")
    assert_denied(rig.submit(), "kill_switch")


# -- trading states -------------------------------------------------------------------------


# Which strategies (and which of alpha's symbols) a state at each scope covers.
SCOPES = [
    ("global", {("alpha", "GOOG"), ("alpha", "MSFT"), ("beta", "GOOG"), ("gamma", "GOOG")}),
    ("engine:trend", {("alpha", "GOOG"), ("alpha", "MSFT"), ("beta", "GOOG")}),
    ("strategy:alpha", {("alpha", "GOOG"), ("alpha", "MSFT")}),
    ("instrument:GOOG", {("alpha", "GOOG"), ("beta", "GOOG"), ("gamma", "GOOG")}),
]
TARGETS = [("alpha", "GOOG"), ("alpha", "MSFT"), ("beta", "GOOG"), ("gamma", "GOOG")]


def _rig_with_long_positions() -> RiskRig:
    rig = RiskRig(pools=THREE_POOLS)
    for name, symbol in TARGETS:
        decision = rig.submit(name, Side.BUY, 10, symbol=symbol)
        rig.fill(decision.client_order_id)
    return rig


@pytest.mark.parametrize(("scope", "covered"), SCOPES, ids=[s for s, _ in SCOPES])
def test_halted_at_a_scope_denies_every_order_it_covers_and_nothing_else(
    scope: str, covered: set[tuple[str, str]]
) -> None:
    rig = _rig_with_long_positions()
    rig.risk.halt(actor="cro", reason="incident", scope=scope)

    for name, symbol in TARGETS:
        buy = rig.submit(name, Side.BUY, 1, symbol=symbol)
        reduce = rig.submit(name, Side.SELL, 5, symbol=symbol)
        if (name, symbol) in covered:
            assert_denied(buy, "halted", "trading halted")
            assert_denied(reduce, "halted")
        else:
            assert_approved(buy)
            assert_approved(reduce)


@pytest.mark.parametrize(("scope", "covered"), SCOPES, ids=[s for s, _ in SCOPES])
def test_reducing_at_a_scope_passes_only_reducing_orders_of_what_it_covers(
    scope: str, covered: set[tuple[str, str]]
) -> None:
    rig = _rig_with_long_positions()
    rig.risk.set_state(TradingState.REDUCING, actor="cro", reason="too much risk", scope=scope)

    for name, symbol in TARGETS:
        buy = rig.submit(name, Side.BUY, 1, symbol=symbol)
        flip = rig.submit(name, Side.SELL, 11, symbol=symbol)
        reduce = rig.submit(name, Side.SELL, 5, symbol=symbol)
        if (name, symbol) in covered:
            assert_denied(buy, "reducing", "reducing-only")
            assert_denied(flip, "reducing")
        else:
            assert_approved(buy)
            assert_approved(flip)
        assert_approved(reduce)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({"global": TradingState.REDUCING, "strategy:alpha": TradingState.HALTED}, "halted"),
        ({"global": TradingState.HALTED, "strategy:alpha": TradingState.ACTIVE}, "halted"),
        ({"engine:trend": TradingState.REDUCING, "instrument:GOOG": TradingState.HALTED}, "halted"),
        (
            {"instrument:GOOG": TradingState.REDUCING, "engine:trend": TradingState.ACTIVE},
            "reducing",
        ),
        ({"strategy:alpha": TradingState.REDUCING, "global": TradingState.ACTIVE}, "reducing"),
    ],
)
def test_the_most_restrictive_state_among_the_scopes_wins(
    states: dict[str, TradingState], expected: str
) -> None:
    rig = RiskRig()
    rig.position_of("alpha", Side.BUY, 10)
    for scope, state in states.items():
        rig.risk.set_state(state, actor="cro", reason="test", scope=scope)

    assert_denied(rig.submit("alpha", Side.BUY, 1), expected)
    reduce = rig.submit("alpha", Side.SELL, 5)
    if expected == "halted":
        assert_denied(reduce, "halted")
    else:
        assert_approved(reduce)


def test_a_scope_set_back_to_active_trades_again() -> None:
    rig = RiskRig()
    rig.risk.halt(actor="cro", reason="incident", scope="strategy:alpha")
    assert_denied(rig.submit(), "halted")

    rig.risk.set_state(TradingState.ACTIVE, actor="cro", reason="resolved", scope="strategy:alpha")

    assert_approved(rig.submit())


# -- stale market data ----------------------------------------------------------------------

STALE = 180 * SECOND


def test_without_any_bar_for_the_symbol_new_exposure_is_denied() -> None:
    rig = RiskRig(first_bar=False)

    assert_denied(rig.submit(), "stale_data", "no market data for GOOG yet")

    rig.bar(PRICE)
    assert_approved(rig.submit())


def test_stale_data_denies_new_exposure_while_reducing_orders_still_pass() -> None:
    rig = RiskRig(RiskLimits(stale_data_ns=STALE))
    rig.position_of("alpha", Side.BUY, 10)

    rig.advance(STALE)  # exactly the limit: still fresh
    assert_approved(rig.submit("alpha", Side.BUY, 1))

    rig.advance(1)
    assert_denied(rig.submit("alpha", Side.BUY, 1), "stale_data", "stale market data for GOOG")
    assert_denied(rig.submit("alpha", Side.SELL, 20), "stale_data")  # flips: adds exposure
    assert_denied(rig.submit("alpha", Side.SELL, fraction="0.1"), "stale_data")
    assert_approved(rig.submit("alpha", Side.SELL, 4))
    assert_approved(rig.submit("alpha", Side.SELL, close=True))


def test_a_fresh_bar_after_stale_data_lets_new_exposure_through_again() -> None:
    rig = RiskRig(RiskLimits(stale_data_ns=STALE))
    rig.advance(STALE + 1)
    assert_denied(rig.submit(), "stale_data")

    rig.bar(PRICE)

    assert_approved(rig.submit())


def test_staleness_is_per_symbol() -> None:
    rig = RiskRig(RiskLimits(stale_data_ns=STALE))
    rig.advance(STALE + 1)
    rig.bar(PRICE, symbol="MSFT")

    assert_denied(rig.submit(symbol="GOOG"), "stale_data")
    assert_approved(rig.submit(symbol="MSFT"))


# -- invalid market data --------------------------------------------------------------------


def test_invalidated_market_data_denies_new_exposure_until_restored() -> None:
    rig = RiskRig()
    rig.position_of("alpha", Side.BUY, 10)
    rig.bus.publish(MarketDataInvalidated(ts=rig.clock.now_ns(), symbol="GOOG", reason="seq gap"))

    assert_denied(rig.submit(), "invalid_data", "market data invalid: seq gap")
    rig.advance(SECOND)
    rig.bar(PRICE)  # a bar alone does not make the feed trustworthy again
    assert_denied(rig.submit(), "invalid_data")
    assert_approved(rig.submit(symbol="MSFT"))
    assert_approved(rig.submit(side=Side.SELL, quantity=5))

    rig.bus.publish(MarketDataRestored(ts=rig.clock.now_ns(), symbol="GOOG"))

    assert_approved(rig.submit())


# -- price band -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "limit", "approved"),
    [
        (Side.BUY, 11_000, True),  # exactly 10% above the last close
        (Side.BUY, 11_001, False),
        (Side.BUY, 9_000, True),
        (Side.BUY, 8_999, False),
        (Side.SELL, 11_001, False),
        (Side.SELL, 10_500, True),
    ],
)
def test_a_limit_price_beyond_the_band_around_the_last_close_is_denied(
    side: Side, limit: int, approved: bool
) -> None:
    rig = RiskRig(RiskLimits(price_band=Fraction(1, 10)))

    decision = rig.submit("alpha", side, 1, limit=limit)

    if approved:
        assert_approved(decision)
    else:
        assert_denied(decision, "price_band", f"limit {limit} outside the 1/10 band around 10000")


def test_a_stop_trigger_far_from_the_last_close_is_allowed() -> None:
    rig = RiskRig(RiskLimits(price_band=Fraction(1, 10)))

    assert_approved(rig.submit(side=Side.BUY, quantity=1, stop=20_000))
    assert_approved(rig.submit(side=Side.SELL, quantity=1, stop=5_000))
    assert_denied(rig.submit(side=Side.BUY, quantity=1, stop=20_000, limit=20_000), "price_band")


def test_the_price_band_follows_the_last_close() -> None:
    rig = RiskRig(RiskLimits(price_band=Fraction(1, 10)))
    rig.advance(SECOND)
    rig.bar(20_000)

    assert_approved(rig.submit(limit=21_500))
    assert_denied(rig.submit(limit=11_000), "price_band")


# -- order rate -------------------------------------------------------------------------------


def test_the_strategy_rate_limit_denies_the_order_after_n_within_sixty_seconds() -> None:
    rig = RiskRig(RiskLimits(max_orders_per_minute_strategy=3))
    for _ in range(3):
        assert_approved(rig.submit())
        rig.advance(10 * SECOND)

    assert_denied(rig.submit(), "rate_limit", "strategy alpha: over 3 orders/min")
    rig.advance(60 * SECOND - 30 * SECOND - 1)  # 1 ns before the first order leaves the window
    assert_denied(rig.submit(), "rate_limit")

    rig.advance(1)  # the first order is now 60 s old: the window has slid past it

    assert_approved(rig.submit())
    assert_denied(rig.submit(), "rate_limit")  # the second one is still inside
    assert len(rig.executed) == 4


def test_one_strategy_at_its_rate_limit_does_not_use_another_strategys_budget() -> None:
    rig = RiskRig(RiskLimits(max_orders_per_minute_strategy=2), pools=THREE_POOLS)
    for _ in range(2):
        assert_approved(rig.submit("alpha"))
    assert_denied(rig.submit("alpha"), "rate_limit")

    assert_approved(rig.submit("beta"))
    assert_approved(rig.submit("gamma"))


def test_strategies_of_one_engine_share_the_engine_rate_budget() -> None:
    rig = RiskRig(
        RiskLimits(max_orders_per_minute_strategy=10, max_orders_per_minute_engine=3),
        pools=THREE_POOLS,
    )
    assert_approved(rig.submit("alpha"))
    assert_approved(rig.submit("beta"))
    assert_approved(rig.submit("alpha"))

    assert_denied(rig.submit("beta"), "engine_rate_limit", "engine trend: over 3/min")
    assert_denied(rig.submit("alpha"), "engine_rate_limit")
    assert_approved(rig.submit("gamma"))  # engine "mean" has its own budget
    rig.advance(60 * SECOND)
    assert_approved(rig.submit("beta"))


# -- order size -------------------------------------------------------------------------------


def test_an_order_above_max_order_quantity_is_denied_and_one_at_it_approved() -> None:
    rig = RiskRig(RiskLimits(max_order_quantity=100))

    assert_approved(rig.submit(quantity=100))
    assert_denied(rig.submit(quantity=101), "order_size", "order quantity 101 above limit 100")


def test_a_fraction_order_is_sized_from_pool_equity_and_last_price_for_max_order_quantity() -> None:
    rig = RiskRig(RiskLimits(max_order_quantity=100))

    # 10% of 100,000 at 100.00 is 100 units; 11% is 110.
    assert_approved(rig.submit(fraction="0.1"))
    assert_denied(rig.submit(fraction="0.11"), "order_size", "order quantity 110 above limit 100")
    rig.advance(SECOND)
    rig.bar(20_000)  # at 200.00, 11% is 55 units
    assert_approved(rig.submit(fraction="0.11"))


def test_an_order_above_max_order_notional_is_denied() -> None:
    rig = RiskRig(RiskLimits(max_order_notional=usd(10_000)))

    assert_approved(rig.submit(quantity=100))  # 100 x 100.00 = 10,000
    assert_denied(rig.submit(quantity=101), "order_notional", "order notional")
    rig.advance(SECOND)
    rig.bar(20_000)
    assert_approved(rig.submit(quantity=50))
    assert_denied(rig.submit(quantity=51), "order_notional")


def test_max_order_notional_estimates_fraction_orders_from_the_strategys_own_pool() -> None:
    rig = RiskRig(
        RiskLimits(max_order_notional=usd(20_000)),
        pools=(ALPHA, Pool("small", "other", capital=usd(10_000))),
    )

    # 50% of alpha's 100,000 is 50,000; 50% of small's 10,000 is 5,000.
    assert_denied(rig.submit("alpha", fraction="0.5"), "order_notional")
    assert_approved(rig.submit("small", fraction="0.5"))


def test_order_size_limits_apply_to_reducing_orders_too() -> None:
    rig = RiskRig(RiskLimits(max_order_quantity=100))
    rig.position_of("alpha", Side.BUY, 100)
    rig.position_of("alpha", Side.BUY, 100)

    assert_denied(rig.submit(side=Side.SELL, quantity=150), "order_size")
    assert_denied(rig.submit(side=Side.SELL, close=True), "order_size")  # closes 200


# -- position limits ----------------------------------------------------------------------------


def test_max_position_counts_approved_orders_that_are_not_yet_resolved() -> None:
    rig = RiskRig(RiskLimits(max_position_quantity=100))
    assert_approved(rig.submit(quantity=60))

    assert_denied(rig.submit(quantity=50), "position_limit", "position 110 would exceed limit")
    assert_approved(rig.submit(quantity=40))
    assert_denied(rig.submit(quantity=1), "position_limit")
    assert rig.risk.projected_position("GOOG", "alpha") == 100


@pytest.mark.parametrize("how", ["cancel", "reject"])
def test_a_pending_order_that_ends_unfilled_frees_its_position_quantity(how: str) -> None:
    rig = RiskRig(RiskLimits(max_position_quantity=100))
    first = rig.submit(quantity=60)
    assert_denied(rig.submit(quantity=60), "position_limit")

    rig.resolve(first.client_order_id, how)

    assert_approved(rig.submit(quantity=60))


def test_a_partial_fill_counts_the_filled_part_in_the_position_and_the_rest_as_pending() -> None:
    rig = RiskRig(RiskLimits(max_position_quantity=100))
    first = rig.submit(quantity=80)
    rig.fill(first.client_order_id, 30, leaves=50)

    assert rig.portfolios["alpha"].position_quantity("GOOG") == 30
    assert_denied(rig.submit(quantity=21), "position_limit")
    assert_approved(rig.submit(quantity=20))


def test_max_position_applies_to_short_positions() -> None:
    rig = RiskRig(RiskLimits(max_position_quantity=100))
    rig.position_of("alpha", Side.BUY, 50)

    assert_approved(rig.submit(side=Side.SELL, quantity=150))  # ends at -100
    assert_denied(rig.submit(side=Side.SELL, quantity=1), "position_limit")


def test_the_engine_position_limit_sums_the_strategies_of_the_engine() -> None:
    rig = RiskRig(RiskLimits(max_engine_position_quantity=150), pools=THREE_POOLS)
    assert_approved(rig.submit("alpha", quantity=100))

    assert_denied(rig.submit("beta", quantity=60), "engine_position_limit", "engine position 160")
    assert_approved(rig.submit("beta", quantity=50))
    assert_approved(rig.submit("gamma", quantity=150))  # another engine


# -- exposure -----------------------------------------------------------------------------------


def test_exposure_counts_pending_orders_as_if_filled() -> None:
    rig = RiskRig(RiskLimits(max_total_exposure=Fraction(1)))
    assert_approved(rig.submit(quantity=600))

    assert_denied(rig.submit(quantity=401), "exposure", "exposure would be 1.0010 of equity")
    assert_approved(rig.submit(quantity=400))  # exactly 1.0 x equity
    assert_denied(rig.submit(quantity=1), "exposure")


@pytest.mark.parametrize("how", ["cancel", "reject", "fill"])
def test_an_order_without_an_outcome_keeps_counting_until_its_outcome_arrives(how: str) -> None:
    rig = RiskRig(RiskLimits(max_total_exposure=Fraction(1)))
    unknown = rig.submit(quantity=1000)
    for _ in range(10):  # days pass, fresh bars arrive, the venue never answers
        rig.advance(86_400 * SECOND)
        rig.bar(PRICE)
        assert_denied(rig.submit(quantity=1), "exposure")

    rig.resolve(unknown.client_order_id, how)

    if how == "fill":  # it now counts through the position instead
        assert_denied(rig.submit(quantity=1), "exposure")
        assert_approved(rig.submit(side=Side.SELL, quantity=1))
    else:
        assert_approved(rig.submit(quantity=1000))


def test_max_leverage_caps_exposure_when_it_is_tighter() -> None:
    rig = RiskRig(RiskLimits(max_total_exposure=Fraction(1), max_leverage=Fraction(1, 2)))

    assert_denied(rig.submit(quantity=501), "exposure", "limit 1/2")
    assert_approved(rig.submit(quantity=500))


def test_exposure_is_measured_against_the_strategys_own_pool() -> None:
    rig = RiskRig(
        RiskLimits(max_total_exposure=Fraction(1)),
        pools=(ALPHA, Pool("small", "trend", capital=usd(10_000))),
    )
    assert_approved(rig.submit("alpha", quantity=1000))

    assert_approved(rig.submit("small", quantity=100))
    assert_denied(rig.submit("small", quantity=1), "exposure")


def test_exposure_is_valued_at_the_last_price() -> None:
    rig = RiskRig(RiskLimits(max_total_exposure=Fraction(1)))
    rig.position_of("alpha", Side.BUY, 500)  # cash 50,000 + 500 x 100.00
    rig.advance(SECOND)
    rig.bar(20_000)  # equity 150,000; exposure 100,000

    assert_approved(rig.submit(quantity=250))
    assert_denied(rig.submit(quantity=1), "exposure")


def test_fraction_orders_count_as_pending_exposure() -> None:
    rig = RiskRig(RiskLimits(max_total_exposure=Fraction(1)))
    assert_approved(rig.submit(fraction="1"))

    assert_denied(rig.submit(fraction="0.01"), "exposure")
    assert_denied(rig.submit(quantity=1), "exposure")


# -- circuit breaker ----------------------------------------------------------------------------

# How to make alpha's intents fail by its own fault: limits and the faulty intent.
FAULTS: dict[str, tuple[RiskLimits, Callable[[RiskRig], RiskDecision]]] = {
    "rate_limit": (
        RiskLimits(max_orders_per_minute_strategy=1),
        lambda rig: rig.submit(quantity=1),
    ),
    "engine_rate_limit": (
        RiskLimits(max_orders_per_minute_engine=1),
        lambda rig: rig.submit(quantity=1),
    ),
    "order_size": (RiskLimits(max_order_quantity=10), lambda rig: rig.submit(quantity=11)),
    "order_notional": (
        RiskLimits(max_order_notional=usd(1_000)),
        lambda rig: rig.submit(quantity=11),
    ),
    "position_limit": (
        RiskLimits(max_position_quantity=10),
        lambda rig: rig.submit(quantity=11),
    ),
    "engine_position_limit": (
        RiskLimits(max_engine_position_quantity=10),
        lambda rig: rig.submit(quantity=11),
    ),
    "exposure": (
        RiskLimits(max_total_exposure=Fraction(1)),
        lambda rig: rig.submit(quantity=1001),
    ),
    "price_band": (
        RiskLimits(price_band=Fraction(1, 10)),
        lambda rig: rig.submit(quantity=1, limit=12_000),
    ),
    "duplicate": (RiskLimits(), lambda rig: rig.submit(quantity=1, client_order_id="first")),
}


@pytest.mark.parametrize("check", sorted(FAULTS))
def test_five_consecutive_denials_caused_by_the_strategy_open_its_breaker(check: str) -> None:
    limits, faulty = FAULTS[check]
    rig = RiskRig(limits, pools=(ALPHA, GAMMA), breakers=BreakerConfig())
    assert_approved(rig.submit(quantity=1, client_order_id="first"))
    breaker = rig.breakers["alpha"]

    for _ in range(4):
        assert_denied(faulty(rig), check)
    assert breaker.state is BreakerState.CLOSED
    assert_denied(faulty(rig), check)

    assert breaker.state is BreakerState.OPEN
    assert_denied(rig.submit(quantity=1), "breaker", "circuit breaker open (strategy:alpha)")
    assert_approved(rig.submit("gamma", quantity=1))
    assert rig.breakers["gamma"].state is BreakerState.CLOSED


def test_a_filled_order_between_denials_restarts_the_consecutive_count() -> None:
    rig = RiskRig(RiskLimits(max_order_quantity=10), breakers=BreakerConfig())
    for _ in range(4):
        assert_denied(rig.submit(quantity=11), "order_size")
    approved = rig.submit(quantity=10)
    assert_approved(approved)
    rig.fill(approved.client_order_id)  # success is the venue's answer, not the approval
    for _ in range(4):
        assert_denied(rig.submit(quantity=11), "order_size")

    assert rig.breakers["alpha"].state is BreakerState.CLOSED
    assert_approved(rig.submit(quantity=10))


def _halt(rig: RiskRig) -> None:
    rig.risk.halt(actor="cro", reason="incident")


def _reducing(rig: RiskRig) -> None:
    rig.risk.set_state(TradingState.REDUCING, actor="cro", reason="incident")


def _stale(rig: RiskRig) -> None:
    rig.advance(STALE + 1)


def _invalid(rig: RiskRig) -> None:
    rig.bus.publish(MarketDataInvalidated(ts=rig.clock.now_ns(), symbol="GOOG", reason="gap"))


def _killed(rig: RiskRig) -> None:
    rig.kill_switch.trip("global", "incident", actor="alice")


WORLD: dict[str, Callable[[RiskRig], None]] = {
    "halted": _halt,
    "reducing": _reducing,
    "stale_data": _stale,
    "invalid_data": _invalid,
    "kill_switch": _killed,
}


@pytest.mark.parametrize("check", sorted(WORLD))
def test_denials_caused_by_the_world_never_count_against_the_breaker(check: str) -> None:
    rig = RiskRig(RiskLimits(stale_data_ns=STALE), breakers=BreakerConfig())
    WORLD[check](rig)

    for _ in range(20):
        assert_denied(rig.submit(quantity=1), check)

    breaker = rig.breakers["alpha"]
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.failures, breaker.trips) == (0, 0)


def test_venue_rejections_are_recorded_as_breaker_failures_but_cancels_are_not() -> None:
    rig = RiskRig(breakers=BreakerConfig())
    breaker = rig.breakers["alpha"]
    for _ in range(3):
        rig.cancel(rig.submit(quantity=1).client_order_id)
    assert breaker.failures == 0

    rig.reject(rig.submit(quantity=1).client_order_id, "insufficient_margin")

    assert (breaker.failures, breaker.last_failure) == (1, "venue: insufficient_margin")


def test_a_strategy_whose_every_order_the_venue_rejects_opens_its_breaker() -> None:
    rig = RiskRig(breakers=BreakerConfig())

    for _ in range(20):
        decision = rig.submit(quantity=1)
        if decision.approved:
            rig.reject(decision.client_order_id, "insufficient_margin")

    assert rig.breakers["alpha"].state is BreakerState.OPEN


def test_execution_halted_refusals_do_not_count_against_the_strategys_breaker() -> None:
    rig = RiskRig(breakers=BreakerConfig())

    for _ in range(5):
        rig.reject(rig.submit(quantity=1).client_order_id, "execution_halted")

    assert rig.breakers["alpha"].failures == 0


BREAKER = BreakerConfig(cooldown_ns=60 * SECOND)


def _trip_breaker_times(rig: RiskRig, trips: int) -> None:
    """Open alpha's breaker ``trips`` times with oversized orders (probing after cooldowns)."""
    breaker = rig.breakers["alpha"]
    for _ in range(5):
        rig.submit(quantity=11)
    for _ in range(trips - 1):
        rig.advance(BREAKER.cooldown_ns)
        assert breaker.state is BreakerState.HALF_OPEN
        assert_denied(rig.submit(quantity=11), "order_size")  # the failed probe reopens it
    assert breaker.trips == trips


def test_the_strategys_kill_switch_trips_after_kill_after_breaker_trips_breaker_trips() -> None:
    rig = RiskRig(
        RiskLimits(max_order_quantity=10, kill_after_breaker_trips=3),
        pools=(ALPHA, BETA),
        breakers=BREAKER,
    )

    _trip_breaker_times(rig, 3)

    assert rig.kill_switch.is_tripped("strategy:alpha")
    (tripped,) = [e for e in rig.events if isinstance(e, KillSwitchTripped)]
    assert (tripped.scope, tripped.actor, tripped.trigger) == (
        "strategy:alpha",
        "risk",
        "breaker_trips",
    )
    assert tripped.reason == "circuit breaker opened 3 times"
    rig.advance(BREAKER.cooldown_ns)  # the breaker would let a probe through; the kill does not
    assert_denied(rig.submit(quantity=1), "kill_switch")
    assert_approved(rig.submit("beta", quantity=1))
    assert not rig.kill_switch.is_tripped("engine:trend")


def test_fewer_breaker_trips_than_the_kill_limit_do_not_kill_the_strategy() -> None:
    rig = RiskRig(RiskLimits(max_order_quantity=10, kill_after_breaker_trips=3), breakers=BREAKER)

    _trip_breaker_times(rig, 2)

    assert not rig.kill_switch.is_tripped("strategy:alpha")
    rig.advance(BREAKER.cooldown_ns)
    assert_approved(rig.submit(quantity=1))


# -- decisions ------------------------------------------------------------------------------------


def test_every_intent_is_published_as_one_risk_decision_with_its_reason_and_check() -> None:
    rig = RiskRig(RiskLimits(max_order_quantity=10, max_position_quantity=15))
    rig.advance(7)

    decisions = [
        rig.submit(quantity=5),
        rig.submit(quantity=11),
        rig.submit(quantity=10),
        rig.submit(quantity=5, client_order_id="alpha-1"),
    ]

    assert [(d.approved, d.check) for d in decisions] == [
        (True, ""),
        (False, "order_size"),
        (True, ""),
        (False, "duplicate"),
    ]
    assert rig.decisions == decisions
    assert all(d.ts == START_NS + 7 for d in decisions)
    assert RiskDecision.journaled
    assert (rig.risk.approved, rig.risk.denied) == (2, 2)
    assert rig.risk.denied_by == {"order_size": 1, "duplicate": 1}
