"""Execution fails closed when the CRO (the risk engine) goes silent.

Wiring: MessageBus + virtual TimeWarp + ExecutionEngine(heartbeat_timeout_ns=15 s) +
PaperBroker + a real PaperExchange on real GOOG bars. A recording venue client sits
between the engine and the broker, so "reaches the venue" means exactly that. The CRO
heartbeat is either published by the test or, end to end, by a real RiskEngine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from predator.core.bus import MessageBus
from predator.core.clock import NS_PER_SECOND, TimeWarp
from predator.core.events import Event, Message
from predator.execution import (
    CroHeartbeat,
    ExecuteOrder,
    ExecutionEngine,
    ExecutionHalted,
    ExecutionResumed,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    PaperBroker,
    ResumeRefused,
)
from predator.ledger.ledger import Ledger
from predator.market.bar import Bar
from predator.portfolio.portfolio import Portfolio
from predator.risk import RiskDecision, RiskEngine, SubmitOrder
from predator.testkit.builders import goog_bars, goog_feed, money
from predator.venue import CommissionModel, OrderRequest, PaperExchange, Side, VenueOrderAccepted

BARS = goog_bars()
GOOG = goog_feed().instrument
TIMEOUT_NS = 15 * NS_PER_SECOND


class RecordingClient:
    """The venue client execution talks to: remembers each request, then sends it on."""

    def __init__(self, broker: PaperBroker) -> None:
        self.broker = broker
        self.submitted: list[str] = []

    def submit(self, request: OrderRequest) -> None:
        self.submitted.append(request.client_order_id)
        self.broker.submit(request)

    def cancel(self, client_order_id: str) -> None:
        self.broker.cancel(client_order_id)


class DropCroHeartbeats:
    """Chaos: the CRO keeps talking but its heartbeats never arrive (link lost)."""

    def __init__(self) -> None:
        self.dropped = 0

    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        if isinstance(message, CroHeartbeat):
            self.dropped += 1
            return None
        return deliver(message)


class Rig:
    def __init__(self) -> None:
        self.clock = TimeWarp.virtual(BARS[0].ts)
        self.bus = bus = MessageBus()
        self.exchange = PaperExchange(
            clock=self.clock,
            instruments=[GOOG],
            cash=money("100000", GOOG),
            commission=CommissionModel(GOOG),
        )
        bus.subscribe(Bar, self.exchange.on_bar)
        self.venue = RecordingClient(PaperBroker(bus=bus, exchange=self.exchange))
        self.execution = ExecutionEngine(
            bus=bus, clock=self.clock, client=self.venue, heartbeat_timeout_ns=TIMEOUT_NS
        )
        self.events: list[Event] = []
        bus.subscribe(Event, self.events.append)
        self.played = 0
        self._ids = 0

    def play(self) -> Bar:
        bar = BARS[self.played]
        self.clock.set(bar.ts)
        self.bus.publish(bar)
        self.played += 1
        return bar

    def heartbeat(self) -> None:
        self.bus.publish(CroHeartbeat(ts=self.clock.now_ns()))

    def execute(self, quantity: int = 1) -> str:
        self._ids += 1
        request = OrderRequest(
            client_order_id=f"O-{self._ids}", symbol=GOOG.symbol, side=Side.BUY, quantity=quantity
        )
        self.bus.send(ExecuteOrder(strategy="sma", request=request))
        return request.client_order_id

    def of_type(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def rejected(self, client_order_id: str) -> list[OrderRejected]:
        return [e for e in self.of_type(OrderRejected) if e.client_order_id == client_order_id]

    def accepted_by_venue(self) -> list[str]:
        return [e.client_order_id for e in self.of_type(VenueOrderAccepted)]


def assert_refused(rig: Rig, client_order_id: str) -> None:
    """Refused by execution itself: rejected as ``execution_halted``, unseen by the venue."""
    (rejection,) = rig.rejected(client_order_id)
    assert rejection.reason == "execution_halted"
    assert rejection.detail == "CRO heartbeat lost"
    assert client_order_id not in rig.venue.submitted
    assert client_order_id not in rig.accepted_by_venue()
    assert rig.execution.orders[client_order_id].status is OrderStatus.REJECTED


@pytest.fixture
def silent() -> Rig:
    """Orders flowed under a heartbeat; then the CRO went silent past the timeout."""
    rig = Rig()
    rig.play()
    rig.heartbeat()
    rig.execute()
    rig.clock.advance(TIMEOUT_NS + 1)
    return rig


def test_orders_reach_the_venue_while_heartbeats_arrive() -> None:
    rig = Rig()
    sent = []
    for _ in range(3):
        rig.play()
        rig.heartbeat()
        sent.append(rig.execute())

    assert rig.venue.submitted == sent
    assert rig.accepted_by_venue() == sent
    assert [f.client_order_id for f in rig.of_type(OrderFilled)] == sent[:2]  # next open
    assert rig.of_type(ExecutionHalted) == []
    assert rig.execution.halted is None


def test_an_order_at_exactly_the_timeout_after_the_last_heartbeat_still_flows() -> None:
    rig = Rig()
    rig.play()
    rig.heartbeat()
    rig.clock.advance(TIMEOUT_NS)

    client_order_id = rig.execute()

    assert rig.venue.submitted == [client_order_id]
    assert rig.execution.halted is None


def test_without_any_heartbeat_yet_the_first_order_is_refused() -> None:
    rig = Rig()
    rig.play()

    client_order_id = rig.execute()

    assert_refused(rig, client_order_id)
    (halted,) = rig.of_type(ExecutionHalted)
    assert halted.last_heartbeat_ts is None


def test_an_order_after_the_heartbeat_timeout_is_refused_and_never_reaches_the_venue(
    silent: Rig,
) -> None:
    before = list(silent.venue.submitted)

    client_order_id = silent.execute()

    assert_refused(silent, client_order_id)
    assert silent.venue.submitted == before
    assert client_order_id not in [r.client_order_id for r in silent.exchange.open_orders()]


def test_execution_halted_is_published_once_however_many_orders_are_refused(
    silent: Rig,
) -> None:
    last_heartbeat = BARS[0].ts
    refused = [silent.execute() for _ in range(4)]
    silent.clock.advance(60 * NS_PER_SECOND)
    refused.append(silent.execute())

    (halted,) = silent.of_type(ExecutionHalted)
    assert halted.last_heartbeat_ts == last_heartbeat
    assert halted.ts == last_heartbeat + TIMEOUT_NS + 1
    assert halted.reason == "CRO heartbeat lost"
    for client_order_id in refused:
        assert_refused(silent, client_order_id)
    assert silent.execution.halted == "CRO heartbeat lost"


def test_a_heartbeat_alone_does_not_resume_execution(silent: Rig) -> None:
    silent.execute()
    silent.heartbeat()

    client_order_id = silent.execute()

    assert_refused(silent, client_order_id)
    assert silent.of_type(ExecutionResumed) == []


def test_resume_while_the_cro_is_still_silent_is_refused(silent: Rig) -> None:
    silent.execute()

    with pytest.raises(ResumeRefused, match="no CRO heartbeat"):
        silent.execution.resume(actor="operator:alice", reason="looks fine")

    assert silent.of_type(ExecutionResumed) == []
    assert_refused(silent, silent.execute())


def test_resume_with_a_heartbeat_that_went_stale_again_is_refused(silent: Rig) -> None:
    silent.execute()
    silent.heartbeat()
    silent.clock.advance(TIMEOUT_NS + 1)

    with pytest.raises(ResumeRefused):
        silent.execution.resume(actor="operator:alice", reason="it was back a moment ago")


def test_heartbeat_back_and_operator_resume_let_orders_flow_again(silent: Rig) -> None:
    refused = silent.execute()
    silent.heartbeat()

    silent.execution.resume(actor="operator:alice", reason="CRO link restored")

    (resumed,) = silent.of_type(ExecutionResumed)
    assert (resumed.actor, resumed.reason, resumed.ts) == (
        "operator:alice",
        "CRO link restored",
        silent.clock.now_ns(),
    )
    assert silent.execution.halted is None
    client_order_id = silent.execute()
    assert silent.venue.submitted[-1] == client_order_id
    assert refused not in silent.venue.submitted
    silent.play()
    silent.play()
    assert client_order_id in [f.client_order_id for f in silent.of_type(OrderFilled)]


def test_resume_when_not_halted_publishes_nothing() -> None:
    rig = Rig()
    rig.play()
    rig.heartbeat()

    rig.execution.resume(actor="operator:alice", reason="just in case")

    assert rig.of_type(ExecutionResumed) == []


# -- end to end: the RiskEngine is the heartbeat source ----------------------------------


class CroRig(Rig):
    """Adds a Portfolio and a real RiskEngine: it heartbeats on bars and on approvals."""

    def __init__(self) -> None:
        super().__init__()
        portfolio = Portfolio(
            bus=self.bus,
            ledger=Ledger(GOOG.quote_currency, GOOG.money_precision),
            instruments=[GOOG],
            initial_cash=money("100000", GOOG),
            ts=self.clock.now_ns(),
        )
        self.risk = RiskEngine(bus=self.bus, clock=self.clock)
        self.risk.register_strategy("sma", portfolio=portfolio)

    def intend(self, quantity: int = 1) -> str:
        self._ids += 1
        request = OrderRequest(
            client_order_id=f"S-{self._ids}", symbol=GOOG.symbol, side=Side.BUY, quantity=quantity
        )
        assert self.bus.send(SubmitOrder(strategy="sma", request=request)) is True
        return request.client_order_id


def test_with_a_live_risk_engine_approved_orders_reach_the_venue() -> None:
    rig = CroRig()
    sent = []
    for _ in range(3):
        rig.play()
        sent.append(rig.intend())

    assert rig.venue.submitted == sent
    assert rig.of_type(ExecutionHalted) == []


def test_when_cro_heartbeats_are_lost_on_the_bus_execution_fails_closed() -> None:
    rig = CroRig()
    rig.play()
    flowed = rig.intend()
    chaos = DropCroHeartbeats()
    rig.bus.interceptor = chaos

    rig.play()  # a day later: the risk engine heartbeats, the heartbeat is lost
    refused = rig.intend()  # the risk engine approves, execution cannot hear it

    assert chaos.dropped >= 1
    (decision,) = [e for e in rig.of_type(RiskDecision) if e.client_order_id == refused]
    assert decision.approved
    assert_refused(rig, refused)
    assert rig.venue.submitted == [flowed]
    assert len(rig.of_type(ExecutionHalted)) == 1
    with pytest.raises(ResumeRefused):
        rig.execution.resume(actor="operator:alice", reason="try anyway")


def test_after_the_cro_link_is_restored_an_operator_resume_lets_orders_flow() -> None:
    rig = CroRig()
    rig.play()
    rig.bus.interceptor = DropCroHeartbeats()
    rig.play()
    assert_refused(rig, rig.intend())

    rig.bus.interceptor = None
    rig.play()  # the next bar's heartbeat arrives
    assert_refused(rig, rig.intend())  # still halted: resuming is the operator's call
    rig.execution.resume(actor="operator:alice", reason="CRO link restored")

    client_order_id = rig.intend()

    assert rig.venue.submitted[-1] == client_order_id
    assert len(rig.of_type(ExecutionResumed)) == 1
