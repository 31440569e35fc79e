"""Venue faults on a real kernel: injected -> detected by what -> handled how.

Ghost fills (reversed) and unanswered submits must be settled by reconciliation against
the venue's own records; reject storms and disconnects must open breakers, never crash the node.
"""

from __future__ import annotations

from pathlib import Path

from predator.chaos import FaultInjected
from predator.core.events import Event
from predator.execution.order import FillReversed, OrderFilled, OrderRejected, OrderStatus
from predator.ledger import Journal
from predator.ledger.stores import SqliteStore
from predator.node import BacktestConfig
from predator.node.backtest import _build_kernel
from predator.node.recovery import load_durable, recover
from predator.risk.circuit_breaker import BreakerState, BreakerStateChanged
from predator.risk.emergency_stop import KillSwitchTripped
from predator.testkit.chaos_node import ChaosNode, btc, goog
from predator.validation.reconciliation import (
    FillRecovered,
    OrderOutcomeRecovered,
    ReconciliationMismatch,
)

GOOG_SMA = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")
BTC_SMA = BacktestConfig(params={"fast": 5, "slow": 15}, cash="1000000", risk={})


def _books_match_venue(node: ChaosNode) -> None:
    kernel = node.kernel
    for portfolio in kernel.portfolios.values():
        cash, positions = kernel.exchange.account_snapshot(portfolio.account)
        assert portfolio.cash == cash
        symbol = kernel.instrument.symbol
        assert portfolio.position_quantity(symbol) == positions.get(symbol, 0)


def test_ghost_fill_is_caught_by_reconciliation_and_reversed_exactly() -> None:
    node = ChaosNode(goog(), GOOG_SMA)
    node.play(40)
    fault = node.fault("ghost_fill", target="venue")
    node.play_until(lambda: node.injector.counts.get(fault.fault_id), 300)
    ghost_id = f"G-{fault.fault_id}"
    # Execution applied it (the report names an order we sent) ...
    applied = [f for f in node.of(OrderFilled) if f.trade_id == ghost_id]
    assert applied and applied[0].strategy == "sma_cross"
    # ... and the check at the end of the bar found the venue never made it: reversed.
    reversed_ = node.of(FillReversed)
    assert [r.trade_id for r in reversed_] == [ghost_id]
    order = node.kernel.execution.orders[applied[0].client_order_id]
    assert ghost_id not in order.trade_ids and order.is_open
    assert node.of(ReconciliationMismatch) == []
    assert node.of(KillSwitchTripped) == []  # corrected, not halted
    _books_match_venue(node)
    assert node.injector.findings == []  # nothing crashed


def test_api_timeout_order_stays_unanswered_until_reconciliation_recovers_its_fill() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    node.fault("api_timeout", target="venue", duration_s=600)
    node.play_until(lambda: node.injector.venue.timed_out, 200)
    client_order_id = next(iter(node.injector.venue.timed_out))
    order = node.kernel.execution.orders[client_order_id]
    # No answer: the order is neither accepted nor assumed canceled.
    assert order.status in (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN)
    node.play(20)

    assert order.status is OrderStatus.FILLED
    recovered = {r.client_order_id for r in node.of(FillRecovered)}
    assert client_order_id in recovered
    assert node.of(ReconciliationMismatch) == []
    _books_match_venue(node)


def test_reject_storm_opens_the_breaker_and_never_crashes() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    fault = node.fault("reject_storm", target="venue", duration_s=3 * 3600)
    node.play(240)
    assert node.injector.counts[fault.fault_id]["rejected"] >= 3
    assert node.kernel.rejections["rate_limit_exceeded"] >= 3
    opened = [e for e in node.of(BreakerStateChanged) if e.state is BreakerState.OPEN]
    assert any(e.scope == "strategy:sma_cross" for e in opened)
    assert node.of(ReconciliationMismatch) == []
    _books_match_venue(node)


def test_venue_disconnect_refuses_orders_and_loses_nothing() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    fault = node.fault("venue_disconnect", target="venue", duration_s=3 * 3600)
    node.play(240)
    assert node.injector.counts[fault.fault_id]["rejected"] >= 1
    assert node.kernel.rejections["venue_halted"] >= 1
    assert any(e.state is BreakerState.OPEN for e in node.of(BreakerStateChanged))
    node.play(30)  # reconnected: the next check finds the books in line with the venue
    assert node.of(ReconciliationMismatch) == []
    _books_match_venue(node)


def test_partial_fill_storm_keeps_books_equal_to_the_venue() -> None:
    node = ChaosNode(goog(), GOOG_SMA)
    node.play(30)
    fault = node.fault("partial_fill_storm", target="venue", duration_s=400 * 86_400)
    node.play(400)
    assert node.injector.counts[fault.fault_id]["resized"] >= 2
    assert node.of(ReconciliationMismatch) == []
    _books_match_venue(node)


def test_every_fault_is_reported_on_the_chaos_bus_not_the_journal() -> None:
    node = ChaosNode(goog(), GOOG_SMA)
    node.play(5)
    node.fault("reject_storm", target="venue", duration_s=86_400)
    node.play(3)
    injected = node.chaos.of_type(FaultInjected)
    assert [e.kind for e in injected] == ["reject_storm"]
    journaled = [type(e).__name__ for e in node.events]
    assert "FaultInjected" not in journaled and "FaultCleared" not in journaled


def test_a_kill_during_matching_does_not_crash_the_venue() -> None:
    # Found by the chaos tests: a fill's kill switch canceled another resting order of
    # the same bar while the venue was matching, and the venue raised ValueError.
    node = ChaosNode(btc(), BTC_SMA)  # no fault injected at all
    node.play(400)


def test_a_rejection_lost_in_a_crash_for_an_order_the_venue_never_received_is_settled(
    tmp_path: Path,
) -> None:
    """An overloaded gateway rejects an order for the venue; the node crashes before the
    rejection is durable (the order itself was, write-ahead). The restarted node finds the
    order SUBMITTED and the venue without any record of it: reconciliation proves it never
    arrived and closes it as rejected (``unknown_order``), no mismatch, no kill switch (a
    campaign seed once sat halted for 24 days on such an order)."""
    feed, path = btc(), tmp_path / "journal.sqlite"
    node = ChaosNode(feed, BTC_SMA, journal=Journal(path, batch_size=4096))
    node.play(30)
    storm = node.fault("reject_storm", target="venue", duration_s=6 * 3600)
    node.play_until(lambda: node.injector.counts.get(storm.fault_id), 300)
    rejected = [e.client_order_id for e in node.of(OrderRejected)]
    exchange = node.kernel.exchange
    assert rejected and not any(exchange.knows_order(cid) for cid in rejected)
    node.journal.store.close()  # the crash: the pending rejections are lost
    store = SqliteStore(path)
    durable = load_durable(store)
    store.close()
    journal = Journal(path, batch_size=4096)
    fresh = _build_kernel(feed, BTC_SMA, journal, exchange=exchange, snapshot_every=None)
    events: list[object] = []
    fresh.bus.subscribe(Event, events.append)
    fresh.clock.set(node.kernel.clock.now_ns())
    report = recover(durable, exchange=exchange, kernel=fresh)

    assert report.reconciled, report.mismatches
    durable_rejections = {
        r.payload["client_order_id"] for r in durable.records if r.type == "OrderRejected"
    }
    lost = sorted(set(rejected) - durable_rejections)
    assert lost, "a rejection should have been lost with the pending batch"
    settled = [e for e in events if isinstance(e, OrderOutcomeRecovered)]
    assert sorted(e.client_order_id for e in settled) == lost
    assert {e.reason for e in settled} == {"unknown_order"}
    for cid in rejected:
        assert fresh.execution.orders[cid].status is OrderStatus.REJECTED
    assert not [e for e in events if isinstance(e, ReconciliationMismatch | KillSwitchTripped)]
    journal.close()
