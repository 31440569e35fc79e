"""A ghost fill (one the venue never made) is reversed exactly by reconciliation.

Real data, a real kernel under the chaos layer's ``ghost_fill`` fault: after the next
check the pool, the ledger and the order are as in a twin run without the ghost, the
journal audits clean, and a crash afterwards (or between the ghost and its reversal, or
with a snapshot between them) recovers to the same books.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from predator.execution.order import FillReversed, OrderFilled, OrderStatus
from predator.ledger import Journal
from predator.ledger.journal import JournalRecord
from predator.ledger.stores import SqliteStore
from predator.node import BacktestConfig, load_durable, recover
from predator.node.backtest import _build_kernel
from predator.node.kernel import Kernel
from predator.portfolio.portfolio import PortfolioSavedState
from predator.risk.emergency_stop import KillSwitchTripped
from predator.testkit.chaos_node import ChaosNode, btc, goog
from predator.validation import audit
from predator.validation.postmortem import build_postmortems
from predator.validation.reconciliation import ReconciliationMismatch
from predator.validation.replay import replay

GOOG_SMA = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")
BTC_SMA = BacktestConfig(params={"fast": 5, "slow": 15}, cash="1000000", risk={})


def _books(kernel: Kernel) -> tuple[Any, ...]:
    """Each pool's exported state (without its checkpoint) and the ledger's balances."""

    def state(saved: PortfolioSavedState) -> PortfolioSavedState:
        return msgspec.structs.replace(
            saved, checkpoint=None, since_checkpoint=[], transfers_since_checkpoint=0
        )

    pools = {name: state(p.export_state()) for name, p in kernel.portfolios.items()}
    return pools, dict(kernel.ledger.balances()), kernel.fills


def _twin(feed: Any, config: BacktestConfig, bars: int) -> Kernel:
    node = ChaosNode(feed, config)
    node.play(bars)
    return node.kernel


def _audit_findings(records: list[JournalRecord]) -> list[Any]:
    """Audit findings, but the missing ``RunCompleted`` of a run still going."""
    return [f for f in audit(records).findings if f.check != "complete"]


def _ghost(node: ChaosNode, limit: int = 300) -> str:
    fault = node.fault("ghost_fill", target="venue")
    node.play_until(lambda: node.injector.counts.get(fault.fault_id), limit)
    return f"G-{fault.fault_id}"


def test_a_ghost_fill_is_reversed_and_the_books_equal_a_run_without_it() -> None:
    node = ChaosNode(goog(), GOOG_SMA)
    node.play(40)
    ghost_id = _ghost(node)
    reversed_ = node.of(FillReversed)
    assert [r.trade_id for r in reversed_] == [ghost_id]
    order = node.kernel.execution.orders[reversed_[0].client_order_id]
    assert ghost_id not in order.trade_ids
    assert order.status is OrderStatus.ACCEPTED
    assert order in node.kernel.execution.open_orders()
    assert order.client_order_id in node.kernel.risk.pending_orders()
    assert node.of(ReconciliationMismatch) == []
    assert node.of(KillSwitchTripped) == []
    assert _books(node.kernel) == _books(_twin(goog(), GOOG_SMA, node.played))
    node.play(60)  # the venue's real fill of the order still applies, once
    assert order.status is OrderStatus.FILLED
    assert _books(node.kernel) == _books(_twin(goog(), GOOG_SMA, node.played))
    assert node.of(ReconciliationMismatch) == []
    node.journal.flush()
    records = list(node.journal.records())
    assert [r.type for r in records].count("FillReversed") == 1
    assert _audit_findings(records) == []
    state = replay(records)
    twin = _twin(goog(), GOOG_SMA, node.played)
    assert state.pools["main"].cash == twin.portfolios["sma_cross"].cash
    assert state.pools["main"].fills == twin.portfolios["sma_cross"].fills
    assert any(p.incident.type == "FillReversed" for p in build_postmortems(records))


def _journaled(tmp_path: Path, name: str) -> Journal:
    return Journal(tmp_path / f"{name}.sqlite", batch_size=1)


def _recover(node: ChaosNode, path: Path, config: BacktestConfig, snapshot_every: int | None):
    """A fresh node recovers from the durable journal and the venue that kept running."""
    exchange = node.kernel.exchange
    store = SqliteStore(path)
    durable = load_durable(store)
    store.close()
    journal = Journal(path, batch_size=1)
    fresh = _build_kernel(
        node.feed, config, journal, exchange=exchange, snapshot_every=snapshot_every
    )
    assert node.last is not None
    fresh.clock.set(node.last.ts)
    report = recover(durable, exchange=exchange, kernel=fresh)
    journal.flush()
    records = list(journal.records())
    journal.close()
    return fresh, report, records


def _crash_on(node: ChaosNode, kind: type[Any], trade_prefix: str = "G-") -> list[bool]:
    """Sever the node's journal right after the first ``kind`` of a ghost is journaled."""
    crashed = [False]

    def crash(event: Any) -> None:
        if not crashed[0] and event.trade_id.startswith(trade_prefix):
            crashed[0] = True
            node.journal.flush()
            node.journal.sever()

    node.kernel.bus.subscribe(kind, crash)
    return crashed


def test_a_crash_after_the_reversal_recovers_the_corrected_books(tmp_path: Path) -> None:
    node = ChaosNode(goog(), GOOG_SMA, journal=_journaled(tmp_path, "after"))
    node.play(40)
    _ghost(node)
    node.play(3)
    node.journal.flush()
    node.journal.sever()
    fresh, report, records = _recover(node, tmp_path / "after.sqlite", GOOG_SMA, None)
    assert report.reconciled, report.mismatches
    assert _books(fresh) == _books(_twin(goog(), GOOG_SMA, node.played))
    assert _audit_findings(records) == []


def test_a_crash_between_the_ghost_and_its_reversal_reverses_it_on_recovery(
    tmp_path: Path,
) -> None:
    node = ChaosNode(goog(), GOOG_SMA, journal=_journaled(tmp_path, "between"))
    node.play(40)
    crashed = _crash_on(node, OrderFilled)
    _ghost(node)
    assert crashed[0]
    fresh, report, records = _recover(node, tmp_path / "between.sqlite", GOOG_SMA, None)
    assert report.reconciled, report.mismatches
    assert [r.type for r in records].count("FillReversed") == 1
    assert _books(fresh) == _books(_twin(goog(), GOOG_SMA, node.played))
    assert _audit_findings(records) == []


def test_a_snapshot_between_the_ghost_and_its_reversal_still_recovers(tmp_path: Path) -> None:
    # 1-minute bars, a check every 15 minutes, a snapshot at nearly every bar: the ghost
    # is applied, a snapshot taken, then the reversal journaled and the node crashes.
    node = ChaosNode(btc(), BTC_SMA, journal=_journaled(tmp_path, "snap"), snapshot_every=2)
    node.play(30)
    crashed = _crash_on(node, FillReversed)
    ghost_id = _ghost(node)
    node.play_until(lambda: crashed[0], 30)
    fresh, report, records = _recover(node, tmp_path / "snap.sqlite", BTC_SMA, 2)
    assert report.reconciled, report.mismatches
    ghost_seq = next(
        r.seq for r in records if r.type == "OrderFilled" and r.payload["trade_id"] == ghost_id
    )
    assert ghost_seq < report.snapshot_seq < records[-1].seq
    assert _books(fresh) == _books(_twin(btc(), BTC_SMA, node.played))
    assert _audit_findings(records) == []
