"""Specs for the ExecutionEngine wired to a PaperExchange over the bus, on real GOOG bars.

Submission is idempotent by client order id; a venue fill is applied once per trade id
whatever the bus delivers; reports for orders we never sent are counted, not applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from predator.core.bus import MessageBus
from predator.core.clock import TimeWarp
from predator.core.events import Event, Message
from predator.execution import (
    ExecuteOrder,
    ExecutionEngine,
    Order,
    OrderFilled,
    OrderStatus,
    PaperBroker,
)
from predator.ledger import Journal
from predator.market import Bar
from predator.testkit.builders import goog_bars, goog_feed, money
from predator.venue import (
    CommissionModel,
    OrderRequest,
    OrderType,
    PaperExchange,
    Side,
    TimeInForce,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueReport,
)

BARS = goog_bars()
GOOG = goog_feed().instrument


class RecordingClient:
    """A venue client that remembers every request before passing it to the real broker."""

    def __init__(self, broker: PaperBroker) -> None:
        self.broker = broker
        self.submitted: list[OrderRequest] = []

    def submit(self, request: OrderRequest) -> None:
        self.submitted.append(request)
        self.broker.submit(request)

    def cancel(self, client_order_id: str) -> None:
        self.broker.cancel(client_order_id)


class Rig:
    """Bus, virtual clock, PaperExchange, PaperBroker, ExecutionEngine and a journal."""

    def __init__(self, *, cash: str = "10000") -> None:
        self.clock = TimeWarp.virtual(BARS[0].ts)
        self.bus = MessageBus()
        self.exchange = PaperExchange(
            clock=self.clock,
            instruments=[GOOG],
            cash=money(cash, GOOG),
            commission=CommissionModel(GOOG, rate="0.001"),
        )
        self.bus.subscribe(Bar, self.exchange.on_bar)
        self.client = RecordingClient(PaperBroker(bus=self.bus, exchange=self.exchange))
        self.engine = ExecutionEngine(bus=self.bus, clock=self.clock, client=self.client)
        self.journal = Journal()
        self.bus.subscribe(Event, self._journal)
        self.reports: list[VenueReport] = []
        self.bus.subscribe(VenueReport, self.reports.append)
        self.played = 0

    def _journal(self, event: Event) -> None:
        if event.journaled:
            self.journal.append(event)

    def play(self, bars: int = 1) -> None:
        for bar in BARS[self.played : self.played + bars]:
            self.clock.set(bar.ts)
            self.bus.publish(bar)
        self.played += bars

    def execute(self, client_order_id: str = "O-1", **fields: Any) -> Order:
        fields.setdefault("side", Side.BUY)
        fields.setdefault("quantity", 10)
        request = OrderRequest(client_order_id=client_order_id, symbol="GOOG", **fields)
        order: Order = self.bus.send(ExecuteOrder(strategy="sma", request=request))
        return order

    def journaled(self) -> list[tuple[str, dict[str, Any]]]:
        return [(record.type, record.payload) for record in self.journal.records()]

    def journaled_types(self) -> list[str]:
        return [kind for kind, _ in self.journaled()]


class Interceptor:
    """A bus interceptor built from a function (message, deliver) -> result."""

    def __init__(self, behaviour: Callable[[Message, Callable[[Message], Any]], Any]) -> None:
        self.intercept = behaviour


# -- the normal path ----------------------------------------------------------------------
def test_one_filled_order_is_journaled_as_submitted_accepted_filled() -> None:
    rig = Rig()
    rig.play()
    order = rig.execute(quantity=10)
    rig.play()  # fills at 101.01

    assert rig.journaled_types() == ["OrderSubmitted", "OrderAccepted", "OrderFilled"]
    (_, submitted), (_, accepted), (_, filled) = rig.journaled()
    assert submitted["request"]["quantity"] == 10
    assert accepted["venue_order_id"] == order.venue_order_id == "V1"
    assert (filled["trade_id"], filled["price"], filled["quantity"]) == ("T1", 10101, 10)
    assert filled["fee"] == money("1.0101", GOOG)  # 0.1% of 1,010.10
    assert all(payload["client_order_id"] == "O-1" for _, payload in rig.journaled())
    assert order.status is OrderStatus.FILLED
    assert (order.filled_quantity, order.fees) == (10, filled["fee"])
    assert rig.engine.open_orders() == []


def test_only_orders_not_yet_filled_or_ended_are_open() -> None:
    rig = Rig()
    rig.play()
    filled = rig.execute("O-1")
    resting = rig.execute("O-2", order_type=OrderType.LIMIT, limit_price=9000)
    assert rig.engine.open_orders() == [filled, resting]
    rig.play(3)  # lows 100.50, 109.05, 103.57: the limit at 90.00 is not reached

    assert filled.status is OrderStatus.FILLED
    assert resting.status is OrderStatus.ACCEPTED
    assert rig.engine.open_orders() == [resting]


def test_venue_rejection_becomes_a_journaled_order_rejected() -> None:
    rig = Rig()
    order = rig.execute(order_type=OrderType.LIMIT)  # no limit price

    assert order.status is OrderStatus.REJECTED
    assert rig.journaled_types() == ["OrderSubmitted", "OrderRejected"]
    assert rig.journaled()[1][1]["reason"] == "invalid_price"


def test_ioc_that_cannot_fill_ends_expired() -> None:
    rig = Rig()
    rig.play()
    order = rig.execute(order_type=OrderType.LIMIT, limit_price=10000, tif=TimeInForce.IOC)
    rig.play()  # low 100.50

    assert order.status is OrderStatus.EXPIRED
    assert rig.journaled_types()[-1] == "OrderCanceled"
    assert rig.journaled()[-1][1]["reason"] == "expired"


def test_order_canceled_for_margin_ends_canceled_with_the_reason() -> None:
    rig = Rig(cash="100")
    rig.play()
    order = rig.execute(quantity=10)
    rig.play()

    assert order.status is OrderStatus.CANCELED
    kind, payload = rig.journaled()[-1]
    assert (kind, payload["reason"]) == ("OrderCanceled", "insufficient_margin")


# -- idempotency --------------------------------------------------------------------------
def test_second_execute_with_the_same_client_order_id_does_not_reach_the_venue() -> None:
    rig = Rig()
    rig.play()
    first = rig.execute("O-7", quantity=10)
    again = rig.execute("O-7", quantity=50)  # a retry, even with other fields

    assert again is first
    assert [r.quantity for r in rig.client.submitted] == [10]
    assert len(rig.exchange.open_orders()) == 1
    rig.play()
    assert [f.quantity for f in rig.reports if isinstance(f, VenueOrderFilled)] == [10]
    assert rig.journaled_types() == ["OrderSubmitted", "OrderAccepted", "OrderFilled"]


def test_resending_a_filled_order_id_does_not_reach_the_venue() -> None:
    rig = Rig()
    rig.play()
    order = rig.execute("O-7")
    rig.play()
    assert rig.execute("O-7") is order

    assert len(rig.client.submitted) == 1
    assert order.status is OrderStatus.FILLED


# -- what the bus delivers ----------------------------------------------------------------
def test_a_fill_the_bus_delivers_twice_is_applied_once() -> None:
    rig = Rig()

    def duplicate_fills(message: Message, deliver: Callable[[Message], Any]) -> Any:
        result = deliver(message)
        if isinstance(message, VenueOrderFilled):
            deliver(message)
        return result

    rig.bus.interceptor = Interceptor(duplicate_fills)
    rig.play()
    order = rig.execute(quantity=10)
    rig.play()

    assert rig.engine.duplicate_fills == 1
    assert (order.filled_quantity, order.status) == (10, OrderStatus.FILLED)
    assert rig.journaled_types().count("OrderFilled") == 1


def test_a_fill_republished_later_is_applied_once() -> None:
    rig = Rig()
    filled: list[OrderFilled] = []
    rig.bus.subscribe(OrderFilled, filled.append)
    rig.play()
    order = rig.execute(quantity=10)
    rig.play()
    (venue_fill,) = [r for r in rig.reports if isinstance(r, VenueOrderFilled)]
    fees = order.fees

    rig.play(5)
    rig.bus.publish(venue_fill)
    rig.bus.publish(venue_fill)

    assert rig.engine.duplicate_fills == 2
    assert (order.filled_quantity, order.fees) == (10, fees)
    assert len(filled) == 1


def test_reports_for_orders_never_sent_are_counted_not_applied() -> None:
    rig = Rig()
    ghost_fill = VenueOrderFilled(
        ts=0,
        client_order_id="ghost",
        venue_order_id="V99",
        trade_id="T99",
        symbol="GOOG",
        side=Side.BUY,
        price=10000,
        quantity=5,
        fee=0,
        liquidity="taker",
        order_quantity=5,
        leaves_quantity=0,
    )
    rig.bus.publish(ghost_fill)
    rig.bus.publish(
        VenueOrderCanceled(ts=0, client_order_id="ghost", venue_order_id="V99", reason="x")
    )

    assert rig.engine.unmatched_reports == 2
    assert "ghost" not in rig.engine.orders
    assert rig.journaled_types() == []


def test_an_acceptance_arriving_after_the_fill_leaves_the_order_filled() -> None:
    rig = Rig()
    held: list[Message] = []

    def hold_acceptances(message: Message, deliver: Callable[[Message], Any]) -> Any:
        if isinstance(message, VenueOrderAccepted):
            held.append(message)
            return None
        return deliver(message)

    rig.bus.interceptor = Interceptor(hold_acceptances)
    rig.play()
    order = rig.execute()
    rig.play()
    assert order.status is OrderStatus.FILLED  # the fill overtook the acknowledgment
    rig.bus.interceptor = None
    for message in held:
        rig.bus.publish(message)  # type: ignore[arg-type]

    assert order.status is OrderStatus.FILLED
    assert rig.journaled_types() == ["OrderSubmitted", "OrderFilled"]


def test_an_ioc_expiry_arriving_before_its_acceptance_expires_the_order() -> None:
    rig = Rig()

    def drop_acceptances(message: Message, deliver: Callable[[Message], Any]) -> Any:
        return None if isinstance(message, VenueOrderAccepted) else deliver(message)

    rig.bus.interceptor = Interceptor(drop_acceptances)
    rig.play()
    order = rig.execute(order_type=OrderType.LIMIT, limit_price=10000, tif=TimeInForce.IOC)
    rig.play()  # the venue expires the order; the engine still thinks it is SUBMITTED

    assert order.status is OrderStatus.EXPIRED


# -- determinism --------------------------------------------------------------------------
def _journal_digest_of_a_session() -> str:
    rig = Rig()
    rig.play()
    rig.execute("O-1", quantity=10)
    rig.execute("O-2", order_type=OrderType.LIMIT, limit_price=10400, quantity=5)
    rig.execute("O-3", order_type=OrderType.LIMIT, limit_price=10000, tif=TimeInForce.IOC)
    rig.play(4)
    rig.execute("O-4", side=Side.SELL, close_position=True)
    rig.play()
    return rig.journal.digest


def test_the_same_orders_on_the_same_bars_give_the_same_journal_digest() -> None:
    assert _journal_digest_of_a_session() == _journal_digest_of_a_session()
