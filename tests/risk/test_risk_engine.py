"""The RiskEngine on a real bus with a fake execution handler that records what reaches it.

Wiring: MessageBus + virtual TimeWarp + Portfolio + RiskEngine; ``ExecuteOrder`` is handled
by a recorder standing in for the execution engine, so every assertion is about what the
risk layer let through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.core.bus import MessageBus
from predator.core.clock import TimeWarp
from predator.execution.execution_engine import ExecuteOrder
from predator.execution.order import OrderCanceled, OrderFilled, OrderRejected
from predator.ledger.ledger import Ledger
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.portfolio.portfolio import Portfolio
from predator.risk import (
    RiskDecision,
    RiskEngine,
    RiskLimits,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)
from predator.venue.orders import Liquidity, OrderRequest, Side

START_NS = 1_700_000_000_000_000_000
SYMBOL = "GOOG"
INSTRUMENT = Instrument(symbol=SYMBOL)


@dataclass
class Executed:
    """One ``ExecuteOrder`` as the fake execution handler saw it."""

    command: ExecuteOrder
    state: TradingState  # the risk engine's state at the moment the order reached execution


@dataclass
class RiskRig:
    bus: MessageBus
    clock: TimeWarp
    portfolio: Portfolio
    risk: RiskEngine
    executed: list[Executed] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    state_changes: list[TradingStateChanged] = field(default_factory=list)
    trades: int = 0

    def submit(self, request: OrderRequest, strategy: str = "test") -> bool:
        return bool(self.bus.send(SubmitOrder(strategy=strategy, request=request)))

    def fill(
        self,
        side: Side,
        quantity: int,
        *,
        client_order_id: str | None = None,
        leaves_quantity: int = 0,
        price: int = 10_000,
    ) -> None:
        """Publish an ``OrderFilled`` as execution would (the portfolio applies it)."""
        self.trades += 1
        self.bus.publish(
            OrderFilled(
                ts=self.clock.now_ns(),
                client_order_id=client_order_id or f"outside-{self.trades}",
                strategy="test",
                trade_id=f"T{self.trades}",
                symbol=SYMBOL,
                side=side,
                price=price,
                quantity=quantity,
                fee=0,
                liquidity=Liquidity.TAKER,
                leaves_quantity=leaves_quantity,
            )
        )

    def cancel(self, client_order_id: str) -> None:
        self.bus.publish(
            OrderCanceled(
                ts=self.clock.now_ns(),
                client_order_id=client_order_id,
                strategy="test",
                reason="canceled",
            )
        )

    def reject(self, client_order_id: str) -> None:
        self.bus.publish(
            OrderRejected(
                ts=self.clock.now_ns(),
                client_order_id=client_order_id,
                strategy="test",
                reason="insufficient_margin",
            )
        )

    @property
    def position(self) -> int:
        return self.portfolio.position_quantity(SYMBOL)

    @property
    def executed_ids(self) -> list[str]:
        return [e.command.request.client_order_id for e in self.executed]


def make_rig(limits: RiskLimits | None = None) -> RiskRig:
    bus = MessageBus()
    clock = TimeWarp.virtual(START_NS)
    portfolio = Portfolio(
        bus=bus,
        ledger=Ledger(INSTRUMENT.quote_currency, INSTRUMENT.money_precision),
        instruments=[INSTRUMENT],
        initial_cash=10**6 * 10**INSTRUMENT.money_precision,
        ts=START_NS,
    )
    risk = RiskEngine(bus=bus, clock=clock, portfolio=portfolio, limits=limits)
    rig = RiskRig(bus=bus, clock=clock, portfolio=portfolio, risk=risk)

    def execute(command: ExecuteOrder) -> bool:
        rig.executed.append(Executed(command, risk.state))
        return True

    bus.register(ExecuteOrder, execute)
    bus.subscribe(RiskDecision, rig.decisions.append)
    bus.subscribe(TradingStateChanged, rig.state_changes.append)
    # The risk engine never trades blind: it needs a price before the first order.
    bus.publish(Bar(ts=START_NS, symbol=SYMBOL, open=10_000, high=10_000, low=10_000, close=10_000))
    return rig


def order(
    client_order_id: str,
    side: Side = Side.BUY,
    quantity: int = 10,
    *,
    symbol: str = SYMBOL,
    close_position: bool = False,
    equity_fraction: str | None = None,
) -> OrderRequest:
    if close_position or equity_fraction is not None:
        quantity = 0
    return OrderRequest(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        quantity=quantity,
        close_position=close_position,
        reduce_only=close_position,
        equity_fraction=equity_fraction,
    )


# -- ACTIVE -------------------------------------------------------------------------------


def test_approved_intent_reaches_execution_unchanged_and_publishes_approval() -> None:
    rig = make_rig()
    request = order("o-1", Side.BUY, 7)

    assert rig.submit(request, strategy="alpha") is True

    assert [e.command for e in rig.executed] == [ExecuteOrder(strategy="alpha", request=request)]
    assert rig.decisions == [
        RiskDecision(
            ts=START_NS, client_order_id="o-1", strategy="alpha", approved=True, reason="approved"
        )
    ]
    assert (rig.risk.approved, rig.risk.denied) == (1, 0)


def test_risk_decision_carries_the_clock_time_of_the_intent() -> None:
    rig = make_rig()
    rig.clock.advance(5_000)

    rig.submit(order("o-1"))

    assert rig.decisions[0].ts == START_NS + 5_000


def test_intent_for_an_unknown_instrument_is_denied() -> None:
    rig = make_rig()

    assert rig.submit(order("o-1", symbol="MSFT")) is False

    assert rig.executed == []
    assert rig.decisions[0].approved is False
    assert rig.decisions[0].reason == "unknown instrument MSFT"


def test_duplicate_client_order_id_is_denied_and_not_executed_twice() -> None:
    rig = make_rig()
    rig.submit(order("dup-1", Side.BUY, 1))

    assert rig.submit(order("dup-1", Side.SELL, 2)) is False

    assert rig.executed_ids == ["dup-1"]
    assert [d.approved for d in rig.decisions] == [True, False]
    assert rig.decisions[1].reason == "duplicate client order id dup-1"


def test_a_denied_client_order_id_cannot_be_reused() -> None:
    rig = make_rig()
    rig.risk.halt(actor="ops", reason="test")
    rig.submit(order("o-1"))
    rig.risk.set_state(TradingState.ACTIVE, actor="ops", reason="resume")

    assert rig.submit(order("o-1")) is False

    assert rig.executed == []
    assert rig.decisions[-1].reason == "duplicate client order id o-1"


def test_order_above_max_order_quantity_is_denied_and_at_the_limit_approved() -> None:
    rig = make_rig(RiskLimits(max_order_quantity=100))

    assert rig.submit(order("at-limit", quantity=100)) is True
    assert rig.submit(order("above-limit", quantity=101)) is False

    assert rig.executed_ids == ["at-limit"]
    assert rig.decisions[1].reason == "order quantity 101 above limit 100"


def test_without_limits_a_large_order_is_approved() -> None:
    rig = make_rig()

    assert rig.submit(order("big", quantity=10**12)) is True


# -- HALTED -------------------------------------------------------------------------------


def test_no_order_reaches_execution_while_halted() -> None:
    rig = make_rig()
    rig.fill(Side.BUY, 10)
    rig.risk.halt(actor="cro", reason="drawdown limit")

    intents = [
        order("buy", Side.BUY, 1),
        order("sell", Side.SELL, 1),
        order("close", Side.SELL, close_position=True),
        order("fraction", Side.BUY, equity_fraction="0.5"),
    ]
    results = [rig.submit(request) for request in intents]

    assert results == [False] * 4
    assert rig.executed == []
    assert [(d.approved, d.reason) for d in rig.decisions] == [(False, "trading halted")] * 4
    assert (rig.risk.approved, rig.risk.denied) == (0, 4)


def test_halt_publishes_trading_state_changed_with_actor_and_reason() -> None:
    rig = make_rig()
    rig.clock.advance(42)

    rig.risk.halt(actor="operator:alice", reason="venue heartbeat lost")

    assert rig.risk.state is TradingState.HALTED
    assert rig.state_changes == [
        TradingStateChanged(
            ts=START_NS + 42,
            previous=TradingState.ACTIVE,
            state=TradingState.HALTED,
            actor="operator:alice",
            reason="venue heartbeat lost",
        )
    ]


def test_setting_the_current_state_again_publishes_nothing() -> None:
    rig = make_rig()

    rig.risk.set_state(TradingState.ACTIVE, actor="ops", reason="noop")

    assert rig.state_changes == []


def test_resume_after_halt_lets_orders_through_again() -> None:
    rig = make_rig()
    rig.risk.halt(actor="ops", reason="maintenance")
    rig.risk.set_state(TradingState.ACTIVE, actor="ops", reason="maintenance done")

    assert rig.submit(order("o-1")) is True

    assert [(c.previous, c.state, c.reason) for c in rig.state_changes] == [
        (TradingState.ACTIVE, TradingState.HALTED, "maintenance"),
        (TradingState.HALTED, TradingState.ACTIVE, "maintenance done"),
    ]
    assert rig.executed_ids == ["o-1"]


# -- REDUCING -----------------------------------------------------------------------------


@pytest.fixture
def reducing_long_10() -> RiskRig:
    rig = make_rig()
    rig.fill(Side.BUY, 10)
    rig.risk.set_state(TradingState.REDUCING, actor="cro", reason="exposure limit")
    return rig


def test_reducing_passes_close_position_when_a_position_exists(reducing_long_10: RiskRig) -> None:
    assert reducing_long_10.submit(order("close", Side.SELL, close_position=True)) is True

    assert reducing_long_10.executed_ids == ["close"]
    assert reducing_long_10.executed[0].state is TradingState.REDUCING


@pytest.mark.parametrize("quantity", [1, 5, 10])
def test_reducing_passes_an_opposite_quantity_up_to_the_position(
    reducing_long_10: RiskRig, quantity: int
) -> None:
    assert reducing_long_10.submit(order("sell", Side.SELL, quantity)) is True

    assert reducing_long_10.executed_ids == ["sell"]


@pytest.mark.parametrize(
    ("name", "request_"),
    [
        ("same side", order("buy", Side.BUY, 1)),
        ("opposite but larger than the position", order("flip", Side.SELL, 11)),
        ("equity fraction", order("fraction", Side.SELL, equity_fraction="0.1")),
        ("close on the wrong side", order("close-buy", Side.BUY, close_position=True)),
    ],
)
def test_reducing_denies_orders_that_add_exposure(
    reducing_long_10: RiskRig, name: str, request_: OrderRequest
) -> None:
    assert reducing_long_10.submit(request_) is False, name

    assert reducing_long_10.executed == []
    assert reducing_long_10.decisions[-1].reason == (
        "trading is reducing-only and this order adds exposure"
    )


def test_reducing_denies_close_position_when_flat() -> None:
    rig = make_rig()
    rig.risk.set_state(TradingState.REDUCING, actor="cro", reason="test")

    assert rig.submit(order("close", Side.SELL, close_position=True)) is False
    assert rig.submit(order("sell", Side.SELL, 1)) is False

    assert rig.executed == []


def test_reducing_passes_a_buy_that_reduces_a_short() -> None:
    rig = make_rig()
    rig.fill(Side.SELL, 4)
    rig.risk.set_state(TradingState.REDUCING, actor="cro", reason="test")

    assert rig.submit(order("cover", Side.BUY, 4)) is True
    assert rig.submit(order("cover-too-much", Side.BUY, 5)) is False

    assert rig.executed_ids == ["cover"]


def test_reducing_denies_an_intent_for_an_unknown_instrument() -> None:
    rig = make_rig()
    rig.risk.set_state(TradingState.REDUCING, actor="cro", reason="test")

    assert rig.submit(order("o-1", Side.SELL, 1, symbol="MSFT")) is False

    assert [(d.approved, d.reason) for d in rig.decisions] == [(False, "unknown instrument MSFT")]


# REDUCING counts approved orders that are not yet filled as if they had filled.


def test_reducing_denies_orders_that_together_would_flip_the_position(
    reducing_long_10: RiskRig,
) -> None:
    reducing_long_10.submit(order("sell-all", Side.SELL, 10))
    reducing_long_10.submit(order("sell-all-again", Side.SELL, 10))
    reducing_long_10.submit(order("close-too", Side.SELL, close_position=True))

    assert reducing_long_10.executed_ids == ["sell-all"]


def test_reducing_passes_partial_reductions_until_the_position_is_spoken_for(
    reducing_long_10: RiskRig,
) -> None:
    for n in range(4):
        reducing_long_10.submit(order(f"sell-{n}", Side.SELL, 3))

    assert reducing_long_10.executed_ids == ["sell-0", "sell-1", "sell-2"]  # 9 of 10; 12 > 10


@pytest.mark.parametrize("resolution", ["cancel", "reject"])
def test_a_pending_reduction_that_ends_unfilled_frees_its_quantity(
    reducing_long_10: RiskRig, resolution: str
) -> None:
    reducing_long_10.submit(order("sell-1", Side.SELL, 10))
    getattr(reducing_long_10, resolution)("sell-1")

    assert reducing_long_10.submit(order("sell-2", Side.SELL, 10)) is True


def test_a_filled_reduction_counts_through_the_position_only(reducing_long_10: RiskRig) -> None:
    reducing_long_10.submit(order("sell-1", Side.SELL, 6))
    reducing_long_10.fill(Side.SELL, 6, client_order_id="sell-1")

    assert reducing_long_10.position == 4
    assert reducing_long_10.submit(order("sell-2", Side.SELL, 5)) is False
    assert reducing_long_10.submit(order("sell-3", Side.SELL, 4)) is True


def test_a_partially_filled_reduction_still_counts_its_unfilled_rest(
    reducing_long_10: RiskRig,
) -> None:
    reducing_long_10.submit(order("sell-1", Side.SELL, 8))
    reducing_long_10.fill(Side.SELL, 5, client_order_id="sell-1", leaves_quantity=3)

    # position 5, of which 3 are still spoken for by sell-1
    assert reducing_long_10.submit(order("sell-2", Side.SELL, 3)) is False
    assert reducing_long_10.submit(order("sell-3", Side.SELL, 2)) is True


def test_orders_approved_while_active_count_once_reducing_starts() -> None:
    rig = make_rig()
    rig.fill(Side.BUY, 10)
    rig.submit(order("buy-more", Side.BUY, 5))  # approved, not yet filled
    rig.risk.set_state(TradingState.REDUCING, actor="cro", reason="test")

    assert rig.submit(order("sell-15", Side.SELL, 15)) is True
    assert rig.submit(order("sell-1", Side.SELL, 1)) is False


# -- property -----------------------------------------------------------------------------

_IDS = st.sampled_from([f"id-{n}" for n in range(12)])
_SIDES = st.sampled_from([Side.BUY, Side.SELL])
_intent = st.tuples(
    st.just("intent"),
    _IDS,
    _SIDES,
    st.sampled_from(["quantity", "quantity", "close", "fraction"]),
    st.integers(min_value=1, max_value=24),
)
_STATES = st.sampled_from(
    [TradingState.ACTIVE, TradingState.REDUCING, TradingState.REDUCING, TradingState.HALTED]
)
_state_change = st.tuples(st.just("state"), _STATES)
_outside_fill = st.tuples(st.just("outside fill"), _SIDES, st.integers(min_value=1, max_value=20))
# resolve the n-th (modulo) approved, unresolved order
_resolve = st.tuples(
    st.just("resolve"),
    st.integers(min_value=0, max_value=100),
    st.sampled_from(["fill", "partial", "cancel", "reject"]),
)


class PendingBook:
    """The spec's view of REDUCING: approved, unresolved orders count as if filled."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[OrderRequest, int]] = {}  # id -> (request, left)

    def projected(self, position: int) -> int:
        for request, left in self.pending.values():
            if request.close_position:
                position = 0 if request.side * position < 0 else position
            elif request.equity_fraction is None:
                position += request.side * left
        return position

    def reduces(self, request: OrderRequest, position: int) -> bool:
        projected = self.projected(position)
        if request.equity_fraction is not None or projected * request.side >= 0:
            return False
        return request.close_position or request.quantity <= abs(projected)


def _estimated_quantity(request: OrderRequest, position: int) -> int:
    """The engine's estimate: fractions at the rig's constant equity (1e6 USD at 100.00)."""
    if request.equity_fraction is not None:
        return 5000  # 0.5 * 1,000,000 / 100
    if request.close_position:
        return abs(position)
    return request.quantity


@settings(max_examples=300, deadline=None)
@given(
    initial_position=st.integers(min_value=-20, max_value=20),
    initial_state=_STATES,
    actions=st.lists(
        st.one_of(_intent, _intent, _state_change, _outside_fill, _resolve), max_size=50
    ),
)
def test_no_order_reaches_execution_while_halted_and_every_intent_gets_one_decision(
    initial_position: int, initial_state: TradingState, actions: list[tuple]
) -> None:
    rig = make_rig(RiskLimits(max_order_quantity=20))
    if initial_position:
        rig.fill(Side.BUY if initial_position > 0 else Side.SELL, abs(initial_position))
    rig.risk.set_state(initial_state, actor="hypothesis", reason="initial state")
    book = PendingBook()
    intents: list[OrderRequest] = []
    expected_approved: list[str] = []
    seen: set[str] = set()
    for action in actions:
        rig.clock.advance(1)
        kind = action[0]
        if kind == "state":
            rig.risk.set_state(action[1], actor="hypothesis", reason="random walk")
        elif kind == "outside fill":
            rig.fill(action[1], action[2])
        elif kind == "resolve" and book.pending:
            client_order_id = list(book.pending)[action[1] % len(book.pending)]
            request, left = book.pending[client_order_id]
            how = action[2]
            if request.close_position:
                left = abs(rig.position) if rig.position * request.side < 0 else 0
            elif request.equity_fraction is not None:
                left = 3
            if how == "cancel" or not left:
                rig.cancel(client_order_id)
                del book.pending[client_order_id]
            elif how == "reject":
                rig.reject(client_order_id)
                del book.pending[client_order_id]
            elif how == "partial" and left > 1 and not request.close_position:
                part = left // 2
                rig.fill(
                    request.side, part, client_order_id=client_order_id, leaves_quantity=left - part
                )
                book.pending[client_order_id] = (request, left - part)
            else:
                rig.fill(request.side, left, client_order_id=client_order_id)
                del book.pending[client_order_id]
        elif kind == "intent":
            _, client_order_id, side, sizing, quantity = action
            request = order(
                client_order_id,
                side,
                quantity,
                close_position=sizing == "close",
                equity_fraction="0.5" if sizing == "fraction" else None,
            )
            state = rig.risk.state
            projected_before = book.projected(rig.position)
            approve = (
                client_order_id not in seen
                and state is not TradingState.HALTED
                and (state is TradingState.ACTIVE or book.reduces(request, rig.position))
                and _estimated_quantity(request, rig.position) <= 20
            )
            seen.add(client_order_id)
            intents.append(request)

            assert rig.submit(request) is approve

            if approve:
                expected_approved.append(client_order_id)
                book.pending[client_order_id] = (request, request.quantity)
            if approve and state is TradingState.REDUCING:
                # a reduction never grows nor flips the projected position
                projected_after = book.projected(rig.position)
                assert abs(projected_after) < abs(projected_before)
                assert projected_after * projected_before >= 0

    assert all(e.state is not TradingState.HALTED for e in rig.executed)
    assert [d.client_order_id for d in rig.decisions] == [r.client_order_id for r in intents]
    assert [d.client_order_id for d in rig.decisions if d.approved] == rig.executed_ids
    assert rig.executed_ids == expected_approved
    assert (rig.risk.approved, rig.risk.denied) == (
        len(rig.executed),
        len(intents) - len(rig.executed),
    )


@settings(max_examples=150, deadline=None)
@given(
    position=st.integers(min_value=-30, max_value=30).filter(bool),
    intents=st.lists(
        st.tuples(_SIDES, st.integers(min_value=1, max_value=30), st.booleans()), max_size=12
    ),
)
def test_reducing_approves_exactly_the_orders_that_shrink_what_is_not_yet_spoken_for(
    position: int, intents: list[tuple[Side, int, bool]]
) -> None:
    rig = make_rig()
    rig.fill(Side.BUY if position > 0 else Side.SELL, abs(position))
    rig.risk.set_state(TradingState.REDUCING, actor="hypothesis", reason="property")
    remaining = position  # the position once every approved order has filled
    for n, (side, quantity, close) in enumerate(intents):
        reduces = remaining * side < 0 and (close or quantity <= abs(remaining))

        approved = rig.submit(order(f"o-{n}", side, quantity, close_position=close))

        assert approved is reduces
        if approved:
            remaining = 0 if close else remaining + side * quantity
    assert remaining * position >= 0  # never flipped
    assert abs(remaining) <= abs(position)
