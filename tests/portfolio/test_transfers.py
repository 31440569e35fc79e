"""Specs for capital transfers between pools: exact, atomic, journaled, refused when unsafe.

A two-pool kernel on real GOOG daily bars (sma_cross in a trend engine, ema_cross in a
swing engine) moves cash between its pools' venue sub-accounts, portfolios and ledger;
the journal replays and audits clean, and a forged amount is an audit finding.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.core.clock import TimeWarp
from predator.core.events import Event
from predator.ledger import Account, BalanceEquationViolated, Journal, Ledger, Transaction
from predator.ledger.journal import JournalRecord
from predator.market import BarFeed
from predator.node import BacktestConfig, StrategySpec
from predator.node.backtest import _announce_run, _build_kernel, _finish_run
from predator.node.kernel import Kernel
from predator.portfolio import Portfolio
from predator.portfolio.transfers import (
    CapitalTransferred,
    CapitalTransferRefused,
    CapitalTransfers,
    TransferInvalid,
    apply_transfer,
)
from predator.testkit.builders import goog_feed, money, order_filled
from predator.validation import audit, replay
from predator.venue import CommissionModel, OrderRequest, OrderType, PaperExchange, Side
from predator.venue.paper_exchange import TransferRefused

GOOG = goog_feed().instrument
BUY, SELL = Side.BUY, Side.SELL


def usd(amount: str | int) -> int:
    return money(amount, GOOG)


CONFIG = BacktestConfig(
    cash="100000",
    commission="0.002",
    strategies=(
        StrategySpec(strategy="sma_cross", name="trend", engine="trend", params={"fast": 10}),
        StrategySpec(strategy="ema_cross", name="swing", engine="swing"),
    ),
)


@cache
def feed() -> BarFeed:
    return goog_feed()


class Node:
    """A two-pool kernel with its journaled events and a transfer service."""

    def __init__(self, config: BacktestConfig = CONFIG) -> None:
        self.journal = Journal(None)
        self.kernel: Kernel = _build_kernel(feed(), config, self.journal, snapshot_every=None)
        self.events: list[Event] = []
        self.kernel.bus.subscribe(Event, self.events.append)
        _announce_run(self.kernel, feed(), config, self.journal)
        self.transfers = CapitalTransfers(
            bus=self.kernel.bus,
            clock=self.kernel.clock,
            exchange=self.kernel.exchange,
            portfolios=self.kernel.portfolios,
        )
        self.bars = iter(feed())
        for runner in self.kernel.runners.values():
            runner.start()

    def run_bars(self, n: int) -> None:
        for _ in range(n):
            bar = next(self.bars)
            self.kernel.clock.set(bar.ts)
            self.kernel.bus.publish(bar)

    def finish(self) -> None:
        for bar in self.bars:
            self.kernel.clock.set(bar.ts)
            self.kernel.bus.publish(bar)
        _finish_run(self.kernel, CONFIG, self.journal, None, len(feed()))

    def records(self) -> list[JournalRecord]:
        self.journal.flush()
        return list(self.journal.records())

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def _check_everything(node: Node) -> None:
    for portfolio in node.kernel.portfolios.values():
        portfolio.check_balance_equation()
        assert node.kernel.exchange.accounts[portfolio.account].cash == portfolio.cash
    node.kernel.ledger.check()
    assert node.kernel.reconciliation.check().clean


# -- exact transfers ----------------------------------------------------------------------
def test_a_transfer_moves_exact_cash_in_the_venue_the_portfolios_and_one_ledger_transaction() -> (
    None
):
    node = Node()
    kernel = node.kernel
    trend, swing = kernel.portfolios["trend"], kernel.portfolios["swing"]
    before = kernel.ledger.transactions
    amount = usd("1234.56789012")

    event = node.transfers.transfer("trend", "swing", amount, reason="test", actor="operator:ann")

    assert isinstance(event, CapitalTransferred)
    assert (event.transfer_id, event.from_pool, event.to_pool, event.amount) == (
        "X1",
        "trend",
        "swing",
        amount,
    )
    assert (trend.cash, swing.cash) == (usd(50000) - amount, usd(50000) + amount)
    assert (trend.transfers, swing.transfers) == (-amount, amount)
    assert (event.from_cash_after, event.to_cash_after) == (trend.cash, swing.cash)
    assert kernel.ledger.transactions == before + 1  # one balanced transaction
    balances = kernel.ledger.balances()
    assert balances[Account.in_pool(Account.CASH, "trend")] == usd(50000) - amount
    assert balances[Account.in_pool(Account.CASH, "swing")] == usd(50000) + amount
    assert balances[Account.in_pool(Account.TRANSFERS, "trend")] == amount
    assert balances[Account.in_pool(Account.TRANSFERS, "swing")] == -amount
    assert kernel.exchange.accounts["trend"].cash == trend.cash
    assert kernel.exchange.transfer_log[0].amount == amount
    assert node.of(CapitalTransferred) == [event]
    assert sum(p.cash for p in kernel.portfolios.values()) == usd(100000)  # conserved
    _check_everything(node)


def test_transfers_while_trading_keep_books_venue_and_reconciliation_exact() -> None:
    node = Node()
    node.run_bars(150)
    kernel = node.kernel
    moved = 0
    for i in range(6):
        source, target = ("trend", "swing") if i % 2 else ("swing", "trend")
        free = node.transfers.transferable(source)
        if free:
            event = node.transfers.transfer(source, target, free // 3, reason="r", actor="a")
            assert isinstance(event, CapitalTransferred)
            moved += 1
        _check_everything(node)
        node.run_bars(40)
    assert moved >= 3 and kernel.fills > 0
    node.finish()
    _check_everything(node)
    total = sum(p.cash for p in kernel.portfolios.values())
    realized = sum(p.realized_pnl - p.fees for p in kernel.portfolios.values())
    assert total == usd(100000) + realized  # flat at the end: capital conserved


# -- refused transfers --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "target", "amount", "because"),
    [
        ("trend", "swing", usd(50001), "less than"),
        ("trend", "swing", 0, "int > 0"),
        ("trend", "swing", -5, "int > 0"),
        ("trend", "trend", 5, "same account"),
        ("trend", "nowhere", 5, "no single pool"),
    ],
)
def test_an_unsafe_transfer_is_refused_journaled_and_moves_nothing(
    source: str, target: str, amount: int, because: str
) -> None:
    node = Node()
    ledger_before = node.kernel.ledger.balances()

    event = node.transfers.transfer(source, target, amount, reason="test", actor="operator")

    assert isinstance(event, CapitalTransferRefused)
    assert because in event.reason and event.requested_for == "test"
    assert node.of(CapitalTransferRefused) == [event]
    assert node.kernel.ledger.balances() == ledger_before
    assert node.kernel.exchange.transfer_log == []
    assert [p.cash for p in node.kernel.portfolios.values()] == [usd(50000), usd(50000)]
    assert any(r.type == "CapitalTransferRefused" for r in node.records())
    _check_everything(node)


def test_cash_held_by_a_position_cannot_be_transferred() -> None:
    node = Node()
    kernel = node.kernel
    holding: list[Portfolio] = []
    while not holding:
        node.run_bars(1)
        holding = [p for p in kernel.portfolios.values() if p.position_quantity("GOOG")]
    pool = holding[0]
    free = node.transfers.transferable(pool.account)
    if pool.position_quantity("GOOG") > 0:
        assert free == pool.cash  # fully funded longs: only the cash left over is free
    assert free < pool.equity({"GOOG": kernel.exchange.mark("GOOG") or 0})
    other = "swing" if pool.account == "trend" else "trend"
    refused = node.transfers.transfer(pool.account, other, free + 1, reason="r", actor="a")
    assert isinstance(refused, CapitalTransferRefused)
    _check_everything(node)


def test_open_orders_keep_the_cash_they_need() -> None:
    exchange = PaperExchange(
        clock=TimeWarp.virtual(0),
        instruments=[GOOG],
        cash=0,
        commission=CommissionModel(GOOG, rate="0.002"),
    )
    exchange.open_account("a", usd(10000))
    exchange.open_account("b", usd(10000))
    exchange.submit(
        OrderRequest(
            client_order_id="L1",
            symbol="GOOG",
            side=BUY,
            quantity=10,
            order_type=OrderType.LIMIT,
            limit_price=50000,  # 10 x 500.00 = 5000 + 0.2 % fee = 5010 reserved
            account="a",
        )
    )
    assert exchange.transferable("a") == usd(4990)
    with pytest.raises(TransferRefused, match="free to transfer"):
        exchange.transfer("a", "b", usd(4990) + 1)
    exchange.transfer("a", "b", usd(4990))
    assert (exchange.accounts["a"].cash, exchange.accounts["b"].cash) == (usd(5010), usd(14990))
    exchange.submit(
        OrderRequest(
            client_order_id="F1", symbol="GOOG", side=BUY, equity_fraction="0.5", account="b"
        )
    )
    assert exchange.transferable("b") == usd(7495)  # half the margin is promised
    exchange.halted = True
    with pytest.raises(TransferRefused, match="halted"):
        exchange.transfer("b", "a", 1)


# -- replay, audit, tampering -------------------------------------------------------------
@pytest.fixture(scope="module")
def finished() -> Node:
    node = Node()
    node.run_bars(300)
    for source, target in (("trend", "swing"), ("swing", "trend"), ("trend", "swing")):
        free = node.transfers.transferable(source)
        node.transfers.transfer(source, target, free // 2 + 1, reason="rebalance", actor="t")
        node.run_bars(100)
    node.transfers.transfer("trend", "swing", usd(10**9), reason="too much", actor="t")
    node.finish()
    return node


def test_the_journal_of_a_run_with_transfers_replays_and_audits_clean(finished: Node) -> None:
    records = finished.records()
    assert sum(r.type == "CapitalTransferred" for r in records) == 3
    assert sum(r.type == "CapitalTransferRefused" for r in records) == 1
    report = audit(records)
    assert report.findings == []
    state = replay(records)
    for name, portfolio in finished.kernel.portfolios.items():
        pool = state.pools[portfolio.account]
        assert (pool.cash, pool.transfers, pool.realized_pnl, pool.fees) == (
            portfolio.cash,
            portfolio.transfers,
            portfolio.realized_pnl,
            portfolio.fees,
        ), name
    assert "transfers" in state.render()


def _forged(records: list[JournalRecord], seq: int, **changes: Any) -> list[JournalRecord]:
    """``records`` with the payload of ``seq`` changed (a forgery with a valid chain)."""
    out = []
    for record in records:
        if record.seq == seq:
            payload = {**record.payload, **changes}
            record = msgspec.structs.replace(record, payload=payload, raw=b"")
        out.append(record)
    return out


def test_a_forged_transfer_amount_is_a_balance_finding(finished: Node) -> None:
    records = finished.records()
    transfer = next(r for r in records if r.type == "CapitalTransferred")
    forged = _forged(records, transfer.seq, amount=transfer.payload["amount"] + 1)
    report = audit(forged, chain_verified=True)  # only semantics can catch it
    at = [f for f in report.findings if f.seq == transfer.seq]
    assert at and {f.check for f in at} == {"balance"}
    assert "the node journaled" in at[0].message
    # Unverified, the chain names the same record.
    assert any(f.check == "chain" for f in audit(forged).findings)


def test_a_forged_transfer_draining_a_pool_is_not_applied(finished: Node) -> None:
    records = finished.records()
    transfer = next(r for r in records if r.type == "CapitalTransferred")
    forged = _forged(records, transfer.seq, amount=usd(10**9))
    findings = audit(forged, chain_verified=True).findings
    assert any(f.seq == transfer.seq and "not applied" in f.message for f in findings)


# -- snapshots of a pool ------------------------------------------------------------------
def test_a_pools_saved_state_carries_its_transfers() -> None:
    node = Node()
    node.transfers.transfer("trend", "swing", usd(7), reason="r", actor="a")
    saved = node.kernel.portfolios["swing"].export_state()
    assert saved.transfers == usd(7)
    fresh = Node().kernel
    fresh.portfolios["swing"].load_state(saved)
    assert fresh.portfolios["swing"].transfers == usd(7)


def test_a_transfer_the_ledger_does_not_have_breaks_the_balance_equation() -> None:
    ledger = Ledger("USD", GOOG.money_precision)
    pool = Portfolio(bus=None, ledger=ledger, instruments=[GOOG], initial_cash=100, account="a")
    ledger.post(Transaction(ts=0, reference="x", postings=pool.transfer_postings(5)))
    pool.cash += 5  # cash moved, net transfers not: the equation names it
    with pytest.raises(BalanceEquationViolated, match="ledger transfers vs portfolio"):
        pool.check_balance_equation()
    pool.transfers += 5
    pool.check_balance_equation()


# -- property: fills and transfers conserve capital ---------------------------------------
_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("fill"),
            st.sampled_from(["a", "b"]),
            st.sampled_from([BUY, SELL]),
            st.integers(1, 30),
            st.integers(5_000, 20_000),
            st.integers(0, 10**7),
        ),
        st.tuples(
            st.just("transfer"),
            st.sampled_from(["a", "b"]),
            st.integers(1, 10**12),
        ),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_steps)
def test_any_sequence_of_fills_and_transfers_balances_and_conserves_capital(
    steps: list[tuple[Any, ...]],
) -> None:
    ledger = Ledger("USD", GOOG.money_precision)
    pools = {
        name: Portfolio(
            bus=None, ledger=ledger, instruments=[GOOG], initial_cash=usd(10000), account=name
        )
        for name in ("a", "b")
    }
    for seq, step in enumerate(steps, 1):
        if step[0] == "fill":
            _, name, side, quantity, price, fee = step
            fill = order_filled(side, quantity, price, fee=fee, ts=seq, trade_id=f"T{seq}")
            pools[name].apply_fill(msgspec.structs.replace(fill, account=name))
        else:
            _, name, amount = step
            other = "b" if name == "a" else "a"
            event = CapitalTransferred(
                ts=seq,
                transfer_id=f"X{seq}",
                from_pool=name,
                to_pool=other,
                amount=amount,
                reason="p",
                actor="p",
                from_cash_after=0,
                to_cash_after=0,
            )
            before = (pools[name].cash, pools[other].cash, ledger.balances())
            try:
                apply_transfer(event, pools[name], pools[other])
            except TransferInvalid:
                assert (pools[name].cash, pools[other].cash, ledger.balances()) == before
        for pool in pools.values():
            pool.check_balance_equation()
        ledger.check()
        at_cost = sum(
            p.cash + sum(pos.cost for pos in p.positions.values()) for p in pools.values()
        )
        earned = sum(p.realized_pnl - p.fees for p in pools.values())
        assert at_cost == 2 * usd(10000) + earned
        assert sum(p.transfers for p in pools.values()) == 0
