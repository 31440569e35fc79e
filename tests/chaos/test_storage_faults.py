"""Storage faults: a failing commit loses no record; a slow fsync only delays.

Found by these tests (docs/chaos.md): a commit failure raised inside ``Journal.append``
used to travel through the bus and end the run. Now the records stay pending, trading
halts while commits fail and resumes once they succeed.
"""

from __future__ import annotations

from predator.ledger.journal import verify_chain
from predator.node import BacktestConfig
from predator.testkit.chaos_node import ChaosNode, btc, goog
from predator.validation.reconciliation import ReconciliationMismatch

GOOG_SMA = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")


def _fail_commits(node: ChaosNode, failures: int) -> None:
    node.play(40)
    node.fault("commit_failure", target="journal", duration_s=3000 * 86_400, failures=failures)


def test_commit_failure_loses_no_record_and_the_retry_commits_them_in_order() -> None:
    node = ChaosNode(goog(), GOOG_SMA, batch_size=8)
    _fail_commits(node, failures=1)
    node.play(300)  # found by the chaos tests: this used to end the run
    journal = node.journal
    journal.flush()
    appended = journal.last_seq
    assert node.injector.store.failures == 1
    assert journal.commit_failures == 1 and not journal.commit_failing
    # The failed batch stayed pending: the retry committed every record, chain intact.
    rows = list(journal.store.read())
    assert [row[0] for row in rows] == list(range(1, appended + 1))
    assert verify_chain(rows) == []


def test_trading_halts_while_commits_fail_and_resumes_when_they_succeed() -> None:
    node = ChaosNode(goog(), GOOG_SMA, batch_size=8)
    _fail_commits(node, failures=3)
    node.play(300)
    changes = [
        (e.state.value, e.actor) for e in node.events if type(e).__name__ == "TradingStateChanged"
    ]
    assert ("halted", "journal") in changes
    assert changes[-1] == ("active", "journal")
    halted_at = next(e.ts for e in node.events if type(e).__name__ == "TradingStateChanged")
    resumed_at = [e.ts for e in node.events if type(e).__name__ == "TradingStateChanged"][-1]
    approved_meanwhile = [
        e
        for e in node.events
        if type(e).__name__ == "RiskDecision" and e.approved and halted_at < e.ts < resumed_at
    ]
    assert approved_meanwhile == []  # nothing new traded while the facts could not be kept


def test_slow_fsync_delays_the_node_and_loses_nothing() -> None:
    config = BacktestConfig(params={"fast": 5, "slow": 15}, cash="1000000", risk={})
    node = ChaosNode(btc(), config, batch_size=4)
    node.play(30)
    fault = node.fault("slow_fsync", target="journal", duration_s=3 * 3600, delay_s=90)
    node.play(200)
    assert node.injector.counts[fault.fault_id]["stalls"] >= 1
    assert node.of(ReconciliationMismatch) == []
    kernel = node.kernel
    cash, positions = kernel.exchange.account_snapshot("main")
    portfolio = kernel.portfolios["sma_cross"]
    assert (portfolio.cash, portfolio.position_quantity("BTCUSDT")) == (
        cash,
        positions.get("BTCUSDT", 0),
    )
