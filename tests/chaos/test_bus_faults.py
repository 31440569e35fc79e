"""Bus faults: lost, duplicated, late and shuffled messages; corrupted input.

Lost or late venue reports are settled by reconciliation; duplicates are applied once.
The ``xfail(strict=True)`` tests are findings: they state the behaviour the issue asks
for and fail today (docs/chaos.md has the reproductions).
"""

from __future__ import annotations

from predator.node import BacktestConfig
from predator.testkit.chaos_node import ChaosNode, btc, goog
from predator.validation import audit
from predator.validation.reconciliation import FillRecovered, ReconciliationMismatch

BTC_SMA = BacktestConfig(params={"fast": 5, "slow": 15}, cash="1000000", risk={})
GOOG_SMA = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")


def _books_match_venue(node: ChaosNode) -> None:
    kernel = node.kernel
    for portfolio in kernel.portfolios.values():
        cash, positions = kernel.exchange.account_snapshot(portfolio.account)
        symbol = kernel.instrument.symbol
        assert (portfolio.cash, portfolio.position_quantity(symbol)) == (
            cash,
            positions.get(symbol, 0),
        )


def test_dropped_fill_is_recovered_by_reconciliation() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    fault = node.fault("bus_drop", target="venue_reports", duration_s=86_400, probability=1.0)
    execution, venue = node.kernel.execution, node.kernel.exchange

    def a_fill_was_lost() -> bool:
        applied = {t for order in execution.orders.values() for t in order.trade_ids}
        return any(fill.trade_id not in applied for fill in venue.trade_log)

    node.play_until(a_fill_was_lost, 200)
    node.injector.clear(fault.fault_id)
    node.play(20)
    assert node.of(FillRecovered)
    assert node.of(ReconciliationMismatch) == []
    _books_match_venue(node)


def test_duplicated_reports_are_applied_once() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    fault = node.fault(
        "bus_duplicate", target="venue_reports", duration_s=4 * 3600, probability=1.0
    )
    node.play(250)
    assert node.injector.counts[fault.fault_id]["duplicated"] >= 4
    assert node.kernel.execution.duplicate_fills >= 1
    assert node.of(ReconciliationMismatch) == []
    _books_match_venue(node)


def test_delayed_reports_arrive_in_order_and_books_match() -> None:
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    fault = node.fault(
        "bus_delay", target="venue_reports", duration_s=4 * 3600, min_delay_s=5, max_delay_s=10
    )
    node.play(250)
    assert node.injector.counts[fault.fault_id]["delayed"] >= 4
    assert node.of(ReconciliationMismatch) == []
    _books_match_venue(node)


def test_dropped_intents_never_reach_the_venue() -> None:
    node = ChaosNode(goog(), GOOG_SMA)
    node.play(30)
    fault = node.fault("bus_drop", target="orders", duration_s=400 * 86_400, probability=1.0)
    sent_before = len(node.kernel.execution.orders)
    node.play(300)
    assert node.injector.counts[fault.fault_id]["dropped"] >= 2
    assert len(node.kernel.execution.orders) == sent_before
    assert node.of(ReconciliationMismatch) == []


def test_reordered_bars_are_refused_not_fatal() -> None:
    # Found by the chaos tests: out-of-order bars crashed MaxDrawdownProtection. The
    # kernel's market-data guard now stops a bar older than one already seen.
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    node.fault("bus_reorder", target="market_data", duration_s=3600, window=3)
    node.play(120)
    rejected = [e for e in node.events if type(e).__name__ == "MarketDataRejected"]
    assert rejected and node.kernel.bars_rejected == len(rejected)
    assert all("not after the last one" in e.reason for e in rejected)


def test_corrupt_bars_are_rejected() -> None:
    # Found by the chaos tests: nothing rejected an impossible bar.
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    node.fault("bus_corrupt", target="market_data", duration_s=3600, probability=1.0)
    node.play(60)
    assert all(close > 0 for close in node.kernel.closes)
    assert all(price > 0 for price in node.kernel.risk.last_price.values())
    assert node.kernel.bars_rejected > 0


def test_corrupt_fill_report_is_refused_not_fatal() -> None:
    # Found by the chaos tests: a corrupt fill report reached the ledger and killed the
    # node. Execution now refuses it (journaled) and reconciliation brings the venue's
    # real fill back.
    node = ChaosNode(btc(), BTC_SMA)
    node.play(30)
    fault = node.fault("bus_corrupt", target="venue_reports", duration_s=5 * 3600, probability=1.0)
    node.play(300)
    assert node.injector.findings == []
    assert node.kernel.execution.invalid_reports > 0
    refused = [e for e in node.events if type(e).__name__ == "VenueReportRefused"]
    assert len(refused) == node.kernel.execution.invalid_reports
    node.injector.clear(fault.fault_id)
    node.play(30)
    node.kernel.reconciliation.check()
    for portfolio in node.kernel.portfolios.values():
        cash, _positions = node.kernel.exchange.account_snapshot(portfolio.account)
        assert portfolio.cash == cash  # the venue's real fills were recovered
        portfolio.check_balance_equation()


def test_a_decision_lost_on_the_bus_is_still_journaled_before_its_order() -> None:
    # Found by the campaigns: a chaos layer delaying or dropping RiskDecision on the bus
    # left orders in the journal without their decision, and the audit then refused the
    # journal at the next restart. The journal now taps facts as they are published.
    node = ChaosNode(goog(), GOOG_SMA)
    node.play(30)
    fault = node.fault("bus_drop", target="risk", duration_s=400 * 86_400, probability=1.0)
    node.play(400)
    assert node.injector.counts[fault.fault_id]["dropped"] > 0
    node.journal.flush()
    records = list(node.journal.records())
    decided = {r.payload["client_order_id"] for r in records if r.type == "RiskDecision"}
    # (Heartbeats are lost too: execution halts and refuses the approved orders.)
    orders = [
        r.payload["client_order_id"]
        for r in records
        if r.type in ("OrderSubmitted", "OrderRejected")
    ]
    assert orders and all(client_order_id in decided for client_order_id in orders)
    coverage = [f for f in audit(records).findings if f.check == "coverage"]
    assert coverage == []
