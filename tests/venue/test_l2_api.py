"""Specs for the L2 exchange's client API: the bar-mode PaperExchange's, so execution and
strategies run unchanged; sub-accounts, sizing by equity fraction, closing, the venue
account and its queries, on the real Binance BTCUSDT spot capture."""

from __future__ import annotations

import inspect
from fractions import Fraction

import pytest
from test_l2_exchange import JOIN_TS, LOT, MILLI, index_at
from test_l2_harness import BTC, TICK, L2Harness, usdt

from predator.core.bus import MessageBus
from predator.execution.execution_engine import ExecuteOrder, ExecutionEngine
from predator.execution.order import OrderFilled, OrderStatus
from predator.execution.venue_client import PaperBroker
from predator.venue import (
    CommissionModel,
    L2PaperExchange,
    OrderRequest,
    OrderType,
    PaperExchange,
    RejectReason,
    Side,
)
from predator.venue.paper_exchange import TransferRefused

BAR_ONLY = {"on_bar", "last_bar", "fill_model"}


def public(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}


def test_the_l2_exchange_answers_every_client_call_of_the_bar_exchange() -> None:
    bar, l2 = public(PaperExchange), public(L2PaperExchange)
    assert bar - BAR_ONLY <= l2
    assert {"amend", "heartbeat", "on_market_data", "advance_to"} <= l2
    for name in sorted(bar - BAR_ONLY):
        old = getattr(PaperExchange, name)
        if not callable(old):
            continue  # properties (cash, positions, trade_seq)
        before = list(inspect.signature(old).parameters)
        after = list(inspect.signature(getattr(L2PaperExchange, name)).parameters)
        assert after[: len(before)] == before, name


def test_the_execution_engine_trades_through_a_paper_broker_on_the_l2_exchange() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    bus = MessageBus()
    broker = PaperBroker(bus=bus, exchange=venue.exchange)  # type: ignore[arg-type]
    engine = ExecutionEngine(bus=bus, clock=venue.clock, client=broker)
    filled: list[OrderFilled] = []
    bus.subscribe(OrderFilled, filled.append)
    request = OrderRequest(client_order_id="E1", symbol=BTC.symbol, side=Side.BUY, quantity=MILLI)

    order = bus.send(ExecuteOrder(strategy="s", request=request))

    assert order.status is OrderStatus.FILLED
    assert sum(f.quantity for f in filled) == MILLI
    assert engine.open_orders() == []


def test_sub_accounts_trade_with_their_own_cash() -> None:
    venue = L2Harness(cash="100")
    venue.exchange.open_account("mm", usdt("1000"))
    venue.play_to(index_at(JOIN_TS) + 1)
    venue.submit(side=Side.BUY, quantity=10 * MILLI)  # 618 USDT: too much for main
    venue.submit(side=Side.BUY, quantity=10 * MILLI, account="mm")
    venue.submit(side=Side.BUY, quantity=MILLI, account="nope")

    reasons = [r.reason for r in venue.rejections()]
    assert reasons == [RejectReason.INSUFFICIENT_MARGIN, RejectReason.UNKNOWN_ACCOUNT]
    cash, positions = venue.exchange.account_snapshot("mm")
    assert positions[BTC.symbol] == 10 * MILLI
    assert venue.exchange.account_snapshot("main") == (venue.initial_cash, {BTC.symbol: 0})
    (fill,) = venue.fills()
    assert (
        fill.account == "mm"
        and cash == usdt("1000") - fill.price * fill.quantity * BTC.notional_factor
    )


def test_an_equity_fraction_market_order_buys_what_the_cash_affords_walking_the_book() -> None:
    commission = CommissionModel(BTC, rate="0.001")
    venue = L2Harness(cash="1000", commission=commission)
    venue.play_to(index_at(JOIN_TS) + 1)
    venue.submit(side=Side.BUY, equity_fraction="1")

    fills = venue.fills()
    quantity = sum(f.quantity for f in fills)
    assert quantity % BTC.size_increment == 0
    cost = sum(f.price * f.quantity * BTC.notional_factor + f.fee for f in fills)
    assert venue.exchange.cash == venue.initial_cash - cost >= 0
    one_more = (fills[-1].price * LOT) * BTC.notional_factor * Fraction(1001, 1000)
    assert venue.exchange.cash < one_more  # not a lot more would have fitted


def test_an_equity_fraction_limit_order_is_sized_at_its_limit() -> None:
    venue = L2Harness(cash="1000")
    venue.play_to(index_at(JOIN_TS) + 1)
    bid = venue.book.best_bid()[0]
    order = venue.submit(
        side=Side.BUY, order_type=OrderType.LIMIT, limit_price=bid, equity_fraction="0.5"
    )
    state = venue.exchange.order_state(order.client_order_id)
    # 500 USDT / 61828.25 = 0.0080869 BTC, in whole lots of 0.00001
    assert state is not None and state.quantity == 808 * LOT


def test_close_position_sells_the_whole_position() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    venue.submit(side=Side.BUY, quantity=3 * MILLI)
    closing = venue.submit(side=Side.SELL, close_position=True)
    assert sum(f.quantity for f in venue.fills(closing.client_order_id)) == 3 * MILLI
    assert venue.exchange.positions[BTC.symbol] == 0


def test_fills_since_trade_seq_and_outcomes_answer_like_a_real_venue() -> None:
    venue = L2Harness()
    venue.play_to(index_at(JOIN_TS) + 1)
    first = venue.submit(side=Side.BUY, quantity=MILLI)
    seen = venue.exchange.trade_seq
    second = venue.submit(side=Side.SELL, quantity=MILLI)
    bid = venue.book.best_bid()[0] - 100 * TICK
    resting = venue.submit(
        side=Side.BUY, order_type=OrderType.LIMIT, limit_price=bid, quantity=MILLI
    )

    later = venue.exchange.fills_since(seen)
    assert [f.client_order_id for f in later] == [second.client_order_id]
    assert [f.trade_id for f in venue.exchange.fills_since(0)] == ["T1", "T2"]
    assert venue.exchange.order_outcome(first.client_order_id) == venue.fills()[0]
    assert venue.exchange.order_outcome(resting.client_order_id) is None
    assert venue.exchange.open_orders() == [resting]


def test_equity_and_margin_follow_the_books_mid() -> None:
    venue = L2Harness(cash="10000")
    venue.play_to(index_at(JOIN_TS) + 1)
    venue.submit(side=Side.BUY, quantity=MILLI)
    mid = venue.book.mid()
    exchange = venue.exchange
    assert exchange.mark(BTC.symbol) == round(mid)
    position_value = MILLI * round(mid) * BTC.notional_factor
    assert exchange.equity() == exchange.cash + position_value
    assert exchange.margin_available() == exchange.equity() - position_value
    assert isinstance(L2PaperExchange.equity(exchange), int)


def test_transfers_move_only_the_cash_that_positions_and_orders_do_not_need() -> None:
    venue = L2Harness(cash="1000")
    venue.exchange.open_account("mm", usdt("100"))
    venue.play_to(index_at(JOIN_TS) + 1)
    bid = venue.book.best_bid()[0]
    venue.submit(
        side=Side.BUY, order_type=OrderType.LIMIT, limit_price=bid - 100 * TICK, quantity=MILLI
    )
    free = venue.exchange.transferable("main")
    # A resting bid of 0.001 BTC keeps about 61.7 USDT reserved; the rest is free.
    assert usdt("930") < free < usdt("940")
    with pytest.raises(TransferRefused, match="free to transfer"):
        venue.exchange.transfer("main", "mm", free + 1)
    record = venue.exchange.transfer("main", "mm", free)
    assert record.transfer_id == "X1" and venue.exchange.transfer_log == [record]
    assert venue.exchange.account_snapshot("mm")[0] == usdt("100") + free
    assert venue.exchange.account_snapshot("main")[0] == usdt("1000") - free
    assert venue.exchange.transferable("main") == 0
    for bad in (0, -5, True):
        with pytest.raises(TransferRefused):
            venue.exchange.transfer("mm", "main", bad)
    with pytest.raises(TransferRefused, match="no account"):
        venue.exchange.transfer("mm", "nope", 1)
