"""Reconciliation on a real kernel driven by real GOOG daily bars.

A fill lost between venue and node is found at the next check and recovered exactly
once; an unexplainable difference halts the node through the global kill switch and
overwrites nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from predator.core.clock import NS_PER_SECOND
from predator.core.events import Event, Message
from predator.ledger import Journal
from predator.market import BarFeed, load_bars
from predator.market.bar import Bar
from predator.node import BacktestConfig
from predator.node.backtest import _build_kernel
from predator.node.kernel import Kernel
from predator.risk.emergency_stop import KillSwitchTripped
from predator.risk.risk_engine import SubmitOrder
from predator.testkit import shared_data_dir
from predator.validation.reconciliation import (
    FillRecovered,
    OrderOutcomeRecovered,
    Reconciliation,
    ReconciliationCompleted,
    ReconciliationMismatch,
)
from predator.venue.orders import Liquidity, OrderRequest, OrderType, Side, VenueOrderFilled

GOOG = "backtesting_py_GOOG_daily_2004-2013.csv"


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / GOOG)


class DropFill:
    """Bus interceptor that drops the ``nth`` VenueOrderFilled, and only that one."""

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.seen = 0
        self.dropped: list[VenueOrderFilled] = []

    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        if isinstance(message, VenueOrderFilled):
            self.seen += 1
            if self.seen == self.nth:
                self.dropped.append(message)
                return None
        return deliver(message)


class Node:
    """A real kernel (sma_cross on GOOG) with reconciliation, driven bar by bar."""

    def __init__(self, postmortem_dir: Path | None = None) -> None:
        config = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")
        self.kernel: Kernel = _build_kernel(
            goog(), config, Journal(None), postmortem_dir=postmortem_dir
        )
        self.events: list[Event] = []
        self.kernel.bus.subscribe(Event, self.events.append)
        k = self.kernel
        # The test drives the checks itself: detach the kernel's own per-bar check.
        k.bus.unsubscribe(Bar, k._reconcile)
        self.recon = Reconciliation(
            k.bus, k.clock, k.exchange, k.execution, k.portfolios, k.kill_switch
        )
        for runner in k.runners.values():
            runner.start()
        self.bars = iter(goog())

    def play(self, count: int, *, reconcile: bool = True) -> None:
        """Publish ``count`` bars, offering reconciliation a check after each."""
        k = self.kernel
        for _ in range(count):
            bar = next(self.bars)
            k.clock.set(bar.ts)
            k.bus.publish(bar)
            if reconcile:
                self.recon.maybe_check(bar.ts)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def portfolio(self) -> Any:
        return next(iter(self.kernel.portfolios.values()))


def test_a_lost_fill_is_recovered_at_the_next_check_exactly_once() -> None:
    node = Node()
    drop = DropFill(nth=3)
    node.kernel.bus.interceptor = drop
    node.play(1)  # starts the check interval
    while not drop.dropped:  # no check in between: the loss must wait for the next one
        node.play(1, reconcile=False)
    lost = drop.dropped[0]
    assert lost.trade_id not in node.kernel.execution.orders[lost.client_order_id].trade_ids
    venue_cash, venue_positions = node.kernel.exchange.account_snapshot("main")
    assert venue_positions["GOOG"] != node.portfolio.position_quantity("GOOG")
    assert node.portfolio.cash != venue_cash  # the desync is real before the check

    # Daily bars are one day apart: the next bar is past the 60 s interval.
    node.play(1)

    recovered = node.of(FillRecovered)
    assert [r.trade_id for r in recovered] == [lost.trade_id]
    assert recovered[0].price == lost.price and recovered[0].quantity == lost.quantity
    assert lost.trade_id in node.kernel.execution.orders[lost.client_order_id].trade_ids
    assert node.of(ReconciliationMismatch) == []
    assert node.kernel.kill_switch.tripped_scopes() == []

    again = node.recon.check()
    assert again.clean
    assert len(node.of(FillRecovered)) == 1
    node.kernel.bus.publish(lost)  # the original arrives late after all
    assert node.kernel.execution.duplicate_fills == 1  # refused: applied exactly once
    assert node.portfolio.fills == node.kernel.exchange.trade_seq

    node.play(300)  # the run goes on, reconciled at every bar
    cash, positions = node.kernel.exchange.account_snapshot("main")
    assert node.portfolio.cash == cash
    assert node.portfolio.position_quantity("GOOG") == positions["GOOG"]
    node.portfolio.check_balance_equation()
    assert len(node.of(FillRecovered)) == 1
    assert node.of(ReconciliationMismatch) == []
    completed = node.of(ReconciliationCompleted)
    assert len(completed) == node.recon.checks >= 300
    assert sum(c.corrections for c in completed) == 1
    assert completed[-1].venue_trade_seq == node.kernel.exchange.trade_seq > 3
    assert node.kernel.kill_switch.tripped_scopes() == []


def test_recovered_fill_is_journaled_before_the_fill_it_causes() -> None:
    node = Node()
    drop = DropFill(nth=1)
    node.kernel.bus.interceptor = drop
    while not drop.dropped:
        node.play(1)

    types = [record.type for record in node.kernel.journal.records()]
    recovered_at = types.index("FillRecovered")
    assert "OrderFilled" in types[recovered_at + 1 :]
    # clean checks change nothing and stay off the journal; their outcome is on the bus
    assert "ReconciliationCompleted" not in types
    assert node.of(ReconciliationCompleted)


def test_checks_run_once_per_interval_of_kernel_time() -> None:
    node = Node()
    recon = node.recon
    start = node.kernel.clock.now_ns()

    assert recon.maybe_check(start) is None  # starts the interval
    assert recon.maybe_check(start + 59 * NS_PER_SECOND) is None
    assert recon.maybe_check(start + 60 * NS_PER_SECOND) is not None
    assert recon.maybe_check(start + 61 * NS_PER_SECOND) is None
    assert recon.checks == 1


def test_tampered_venue_cash_halts_and_overwrites_nothing() -> None:
    node = Node()
    node.play(80)
    assert node.of(ReconciliationMismatch) == []
    ours_before = node.portfolio.cash
    node.kernel.exchange.accounts["main"].cash += 12_345

    report = node.recon.check()

    assert [d.kind for d in report.mismatches] == ["cash"]
    (mismatch,) = node.of(ReconciliationMismatch)
    assert mismatch.discrepancies[0].ours == str(ours_before)
    assert mismatch.discrepancies[0].venue == str(ours_before + 12_345)
    trip = node.kernel.kill_switch.trip_of("global")
    assert trip is not None and trip.trigger == "reconciliation_mismatch"
    assert node.of(KillSwitchTripped)[0].actor == "reconciliation"
    assert node.kernel.alerts.counts().get("critical", 0) >= 1
    assert node.portfolio.cash == ours_before  # never overwritten
    assert report.corrections == ()
    node.portfolio.check_balance_equation()


def test_an_unexplainable_mismatch_writes_its_post_mortem_at_once(tmp_path: Path) -> None:
    node = Node(postmortem_dir=tmp_path / "pm")
    node.play(80)
    assert not (tmp_path / "pm").exists()  # nothing happened yet: no report
    node.kernel.exchange.accounts["main"].cash += 12_345

    node.recon.check()

    (mismatch,) = node.of(ReconciliationMismatch)
    reports = sorted(p.name for p in (tmp_path / "pm").glob("*.json"))
    # The mismatch and the kill switch it tripped, each reported as it was journaled.
    assert sorted(name.split("-", 1)[1] for name in reports) == [
        "KillSwitchTripped.json",
        "ReconciliationMismatch.json",
    ]
    document = json.loads(next((tmp_path / "pm").glob("*-ReconciliationMismatch.json")).read_text())
    assert document["incident"]["type"] == "ReconciliationMismatch"
    assert "cash" in json.dumps(document["incident"])
    assert document["state_before"] is not None and document["timeline"]
    markdown = next((tmp_path / "pm").glob("*-KillSwitchTripped.md")).read_text()
    assert "reconciliation_mismatch" in markdown
    # At the end of the run every report is written again with what followed, and an index.
    written = node.kernel.postmortems.finish() if node.kernel.postmortems else []
    assert written[-1].name == "index.md"
    assert "ReconciliationMismatch" in written[-1].read_text()
    assert mismatch.discrepancies[0].kind == "cash"


def test_a_venue_fill_for_an_order_we_never_sent_halts() -> None:
    node = Node()
    node.play(40)
    exchange = node.kernel.exchange
    ours_before = node.portfolio.cash
    position_before = node.portfolio.position_quantity("GOOG")
    ghost = VenueOrderFilled(
        ts=node.kernel.clock.now_ns(),
        client_order_id="ghost-1",
        venue_order_id="V999",
        trade_id="T999",
        symbol="GOOG",
        side=Side.BUY,
        price=10_000,
        quantity=1,
        fee=0,
        liquidity=Liquidity.TAKER,
        order_quantity=1,
        leaves_quantity=0,
    )
    exchange.trade_log.append(ghost)  # the venue knows a trade our node never asked for

    report = node.recon.check()

    assert [d.kind for d in report.mismatches] == ["unknown_order_fill"]
    assert report.corrections == ()
    assert node.of(FillRecovered) == []
    assert node.kernel.kill_switch.is_tripped("global")
    assert node.kernel.kill_switch.trip_of("global").trigger == "reconciliation_mismatch"  # type: ignore[union-attr]
    assert node.portfolio.cash == ours_before
    assert node.portfolio.position_quantity("GOOG") == position_before
    assert "ghost-1" not in node.kernel.execution.orders


def test_a_lost_cancel_is_resolved_by_the_venues_answer_exactly_once() -> None:
    node = Node()
    node.play(60)
    request = OrderRequest(
        client_order_id="resting-1",
        symbol="GOOG",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        limit_price=node.kernel.closes[-1] * 95 // 100,  # below the market: it rests
        quantity=1,
    )
    strategy = next(iter(node.kernel.runners))
    node.kernel.bus.send(SubmitOrder(strategy=strategy, request=request))
    assert node.kernel.execution.orders["resting-1"].is_open
    assert node.recon.check().clean  # open on both sides
    exchange = node.kernel.exchange
    exchange.connect(lambda _report: None)  # the cancel report is lost on the way
    assert exchange.cancel("resting-1")
    exchange.connect(node.kernel.bus.publish)  # the line is back (as the broker does)

    report = node.recon.check()

    assert report.clean, report.mismatches
    assert node.kernel.execution.orders["resting-1"].status.value == "canceled"
    assert [e.client_order_id for e in node.of(OrderOutcomeRecovered)] == ["resting-1"]
    assert node.recon.check().clean
    assert len(node.of(OrderOutcomeRecovered)) == 1  # never twice
    assert not node.kernel.kill_switch.is_tripped("global")


def _node_believing_in(client_order_id: str, *, accepted: bool) -> Node:
    """A node 60 bars in whose execution holds an open order the venue never saw."""
    from predator.execution.order import Order, OrderStatus

    node = Node()
    node.play(60)
    order = Order(
        OrderRequest(client_order_id=client_order_id, symbol="GOOG", side=Side.BUY, quantity=1),
        next(iter(node.kernel.runners)),
    )
    order.transition(OrderStatus.SUBMITTED)
    if accepted:
        order.transition(OrderStatus.ACCEPTED)
        order.venue_order_id = f"V-{client_order_id}"
    node.kernel.execution.restore(order)
    return node


def test_an_order_the_venue_acknowledged_and_then_forgot_halts() -> None:
    node = _node_believing_in("ghost-1", accepted=True)

    report = node.recon.check()

    assert [(d.kind, d.subject) for d in report.mismatches] == [
        ("open_order_missing_at_venue", "ghost-1")
    ]
    assert node.kernel.execution.orders["ghost-1"].is_open  # left as we knew it, never guessed
    assert node.kernel.kill_switch.is_tripped("global")


def test_an_order_sent_but_never_received_by_the_venue_is_closed_as_rejected() -> None:
    """Never acknowledged, and the venue has no record of it at all (its answer to an
    order-status query): it never arrived, so it has no effect; closed, not a halt."""
    from predator.execution.order import OrderStatus

    node = _node_believing_in("lost-1", accepted=False)

    report = node.recon.check()

    assert not report.mismatches
    assert node.kernel.execution.orders["lost-1"].status is OrderStatus.REJECTED
    assert not node.kernel.kill_switch.is_tripped("global")
