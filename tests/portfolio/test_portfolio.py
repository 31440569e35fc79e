"""Specs for the Portfolio: FIFO lots, exact realized PnL and fees, and the balance equation.

Prices are ints at 0.01 USD and money at 10**-8 USD (GOOG's scales); ``usd`` converts a
hand-computed Decimal amount once.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.core.bus import MessageBus
from predator.core.clock import TimeWarp
from predator.execution import ExecuteOrder, ExecutionEngine, OrderFilled, PaperBroker
from predator.ledger import Account, BalanceEquationViolated, Ledger, Posting, Transaction
from predator.market import Bar
from predator.portfolio import Portfolio
from predator.testkit.builders import goog_bars, goog_feed, money, order_filled
from predator.venue import CommissionModel, OrderRequest, PaperExchange, Side

GOOG = goog_feed().instrument
MSFT = msgspec.structs.replace(GOOG, symbol="MSFT")
BUY, SELL = Side.BUY, Side.SELL


def usd(amount: str | int | Decimal) -> int:
    return money(amount, GOOG)


def new_portfolio(cash: str = "100000") -> Portfolio:
    return Portfolio(
        bus=None,
        ledger=Ledger("USD", GOOG.money_precision),
        instruments=[GOOG, MSFT],
        initial_cash=usd(cash),
    )


def apply(portfolio: Portfolio, *fills: OrderFilled) -> None:
    """Apply fills one by one, proving the balance equation after each."""
    for fill in fills:
        portfolio.apply_fill(fill)
        portfolio.check_balance_equation()


def trades_of(portfolio: Portfolio) -> list[tuple[int, int, int, int, int, int]]:
    return [
        (t.size, t.entry_price, t.exit_price, t.gross_pnl, t.fees, t.pnl)
        for t in portfolio.closed_trades
    ]


# -- FIFO lots ----------------------------------------------------------------------------
def test_selling_part_of_two_long_lots_closes_the_oldest_first() -> None:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(BUY, 10, 10000, fee=usd("1.00"), ts=1),
        order_filled(BUY, 10, 11000, fee=usd("2.00"), ts=2),
        order_filled(SELL, 15, 12000, fee=usd("3.00"), ts=3),
    )

    assert trades_of(portfolio) == [
        # all of lot 1: 10 x (120 - 100); fees 1.00 entry + 10/15 of 3.00 exit
        (10, 10000, 12000, usd(200), usd(3), usd(197)),
        # half of lot 2: 5 x (120 - 110); fees 5/10 of 2.00 + 5/15 of 3.00
        (5, 11000, 12000, usd(50), usd(2), usd(48)),
    ]
    assert [t.entry_ts for t in portfolio.closed_trades] == [1, 2]
    position = portfolio.positions["GOOG"]
    assert [(lot.quantity, lot.price, lot.entry_fee) for lot in position.lots] == [
        (5, 11000, usd("1.00"))
    ]
    assert (position.quantity, position.cost) == (5, usd(550))
    assert position.average_price() == 11000
    assert (portfolio.realized_pnl, portfolio.fees) == (usd(250), usd(6))
    assert portfolio.cash == usd(100000 - 1000 - 1 - 1100 - 2 + 1800 - 3)


def test_buying_back_part_of_two_short_lots_closes_the_oldest_first() -> None:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(SELL, 10, 12000),
        order_filled(SELL, 10, 10000),
        order_filled(BUY, 15, 9000),
    )

    assert trades_of(portfolio) == [
        (-10, 12000, 9000, usd(300), 0, usd(300)),  # shorted at 120, covered at 90
        (-5, 10000, 9000, usd(50), 0, usd(50)),
    ]
    position = portfolio.positions["GOOG"]
    assert (position.quantity, position.cost) == (-5, -usd(500))
    assert portfolio.realized_pnl == usd(350)
    assert portfolio.cash == usd(100000 + 1200 + 1000 - 1350)


def test_partial_closes_share_the_entry_fee_in_proportion() -> None:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(BUY, 10, 10000, fee=usd("1.00")),
        order_filled(SELL, 4, 10500, fee=usd("0.40")),
        order_filled(SELL, 6, 9500, fee=usd("0.60")),
    )

    assert trades_of(portfolio) == [
        (4, 10000, 10500, usd(20), usd("0.80"), usd("19.20")),
        (6, 10000, 9500, -usd(30), usd("1.20"), -usd("31.20")),
    ]
    assert portfolio.position_quantity("GOOG") == 0
    assert portfolio.positions["GOOG"].average_price() is None
    assert (portfolio.realized_pnl, portfolio.fees) == (-usd(10), usd(2))
    assert sum(t.pnl for t in portfolio.closed_trades) == portfolio.realized_pnl - portfolio.fees
    assert portfolio.cash == usd(100000 - 10) - usd(2)


def test_one_fill_through_zero_closes_the_long_and_opens_a_short() -> None:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(BUY, 10, 10000, fee=usd("1.00"), ts=1),
        order_filled(SELL, 15, 9000, fee=usd("1.50"), ts=2),
    )

    # 10/15 of the 1.50 fee closes the long; the rest is the short lot's entry fee.
    assert trades_of(portfolio) == [(10, 10000, 9000, -usd(100), usd(2), -usd(102))]
    position = portfolio.positions["GOOG"]
    assert [(lot.quantity, lot.price, lot.entry_ts, lot.entry_fee) for lot in position.lots] == [
        (-5, 9000, 2, usd("0.50"))
    ]
    assert (position.quantity, position.cost) == (-5, -usd(450))
    assert (portfolio.realized_pnl, portfolio.fees) == (-usd(100), usd("2.50"))
    assert portfolio.cash == usd(Decimal(100000) - 1000 - 1 + 1350 - Decimal("1.50"))

    apply(portfolio, order_filled(BUY, 5, 8000, fee=usd("0.25"), ts=3))
    assert trades_of(portfolio)[-1] == (-5, 9000, 8000, usd(50), usd("0.75"), usd("49.25"))
    assert portfolio.position_quantity("GOOG") == 0


def test_positions_in_two_instruments_are_kept_apart() -> None:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(BUY, 10, 10000, symbol="GOOG"),
        order_filled(SELL, 3, 5000, symbol="MSFT"),
        order_filled(SELL, 10, 10100, symbol="GOOG"),
    )

    assert portfolio.position_quantity("GOOG") == 0
    assert portfolio.position_quantity("MSFT") == -3
    assert portfolio.ledger.balance(Account.position("MSFT")) == -usd(150)
    assert portfolio.ledger.balance(Account.position("GOOG")) == 0
    assert portfolio.realized_pnl == usd(10)


# -- valuation ----------------------------------------------------------------------------
def test_equity_and_unrealized_pnl_value_open_positions_at_the_marks() -> None:
    portfolio = new_portfolio()
    apply(portfolio, order_filled(BUY, 10, 10000), order_filled(SELL, 4, 5000, symbol="MSFT"))
    marks = {"GOOG": 10550, "MSFT": 5200}

    assert portfolio.unrealized_pnl(marks) == usd(10 * Decimal("5.50") - 4 * 2)
    assert portfolio.equity(marks) == usd(100000 + 55 - 8)


# -- the ledger posting -------------------------------------------------------------------
def test_each_fill_posts_one_balanced_transaction_to_the_ledger() -> None:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(BUY, 10, 10000, fee=usd(1), trade_id="T-a"),
        order_filled(SELL, 10, 10500, fee=usd(1), trade_id="T-b"),
    )
    ledger = portfolio.ledger

    assert ledger.transactions == 3  # initial capital + one per fill
    assert ledger.balance(Account.CAPITAL) == -usd(100000)
    assert ledger.balance(Account.REALIZED_PNL) == -usd(50)  # income is a credit
    assert ledger.balance(Account.FEES) == usd(2)
    assert ledger.balance(Account.CASH) == portfolio.cash == usd(100048)
    assert ledger.trial_balance() == 0


def test_portfolio_applies_fills_published_on_the_bus() -> None:
    bus = MessageBus()
    portfolio = Portfolio(
        bus=bus, ledger=Ledger("USD", 8), instruments=[GOOG], initial_cash=usd(1000)
    )
    bus.publish(order_filled(BUY, 2, 10000, fee=usd("0.10")))

    assert portfolio.position_quantity("GOOG") == 2
    assert portfolio.fills == 1
    assert portfolio.cash == usd(Decimal(1000) - 200 - Decimal("0.10"))


# -- the balance equation detects tampering -----------------------------------------------
def traded_portfolio() -> Portfolio:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(BUY, 10, 10000, fee=usd(1)),
        order_filled(SELL, 4, 10700, fee=usd(1)),
    )
    return portfolio


def test_balance_equation_detects_cash_moved_in_the_ledger_alone() -> None:
    portfolio = traded_portfolio()
    portfolio.ledger.post(
        Transaction(
            ts=9,
            reference="fat finger",
            postings=(Posting(Account.CASH, -1), Posting(Account.FEES, 1)),
        )
    )

    with pytest.raises(BalanceEquationViolated, match="ledger cash vs portfolio cash") as info:
        portfolio.check_balance_equation()
    assert info.value.actual - info.value.expected == -1


def test_balance_equation_detects_portfolio_cash_out_of_step() -> None:
    portfolio = traded_portfolio()
    portfolio.cash += 1
    with pytest.raises(BalanceEquationViolated):
        portfolio.check_balance_equation()


def test_balance_equation_detects_a_position_account_out_of_step() -> None:
    portfolio = traded_portfolio()
    portfolio.ledger.post(
        Transaction(
            ts=9,
            reference="misbooked",
            postings=(Posting(Account.position("GOOG"), 5), Posting(Account.CAPITAL, -5)),
        )
    )
    with pytest.raises(BalanceEquationViolated, match="ledger GOOG position at cost"):
        portfolio.check_balance_equation()


def test_balance_equation_detects_an_unbalanced_ledger() -> None:
    portfolio = traded_portfolio()
    portfolio.ledger._balances[Account.FEES] += 1  # no public API can do this
    with pytest.raises(BalanceEquationViolated, match="trial balance"):
        portfolio.check_balance_equation()


def test_balance_equation_detects_lots_that_disagree_with_the_position() -> None:
    portfolio = traded_portfolio()
    portfolio.positions["GOOG"].lots[0].price += 1
    with pytest.raises(BalanceEquationViolated, match="GOOG cost of the lots vs the position"):
        portfolio.check_balance_equation()


def test_balance_equation_detects_realized_pnl_out_of_step() -> None:
    portfolio = traded_portfolio()
    portfolio.realized_pnl += 1
    with pytest.raises(BalanceEquationViolated, match="capital \\+ realized - fees"):
        portfolio.check_balance_equation()


# -- properties ---------------------------------------------------------------------------
FILLS = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.integers(1, 200),  # quantity
        st.integers(1, 100_000),  # price: 0.01 .. 1,000.00
        st.integers(0, 10**9),  # fee: 0 .. 10.00
        st.sampled_from(["GOOG", "MSFT"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(FILLS)
def test_books_balance_after_every_fill_of_any_sequence(
    fills: list[tuple[Side, int, int, int, str]],
) -> None:
    portfolio = new_portfolio()
    signed = {"GOOG": 0, "MSFT": 0}
    for ts, (side, quantity, price, fee, symbol) in enumerate(fills):
        portfolio.apply_fill(order_filled(side, quantity, price, fee=fee, symbol=symbol, ts=ts))
        portfolio.check_balance_equation()
        signed[symbol] += side * quantity

        at_cost = sum(position.cost for position in portfolio.positions.values())
        assert portfolio.cash + at_cost == (
            portfolio.initial_cash + portfolio.realized_pnl - portfolio.fees
        )
        assert {s: p.quantity for s, p in portfolio.positions.items()} == signed
        for position in portfolio.positions.values():
            # FIFO keeps every open lot on the position's side
            assert all(lot.quantity * position.quantity > 0 for lot in position.lots)
    assert sum(t.gross_pnl for t in portfolio.closed_trades) == portfolio.realized_pnl
    assert portfolio.fees == sum(fee for *_, fee, _ in fills)


@settings(max_examples=100, deadline=None)
@given(FILLS)
def test_once_flat_realized_pnl_is_the_net_proceeds_of_all_fills(
    fills: list[tuple[Side, int, int, int, str]],
) -> None:
    portfolio = new_portfolio()
    trades = [(side, quantity, price) for side, quantity, price, _, _ in fills]
    for side, quantity, price, fee, _ in fills:
        portfolio.apply_fill(order_filled(side, quantity, price, fee=fee))
    open_quantity = portfolio.position_quantity("GOOG")
    if open_quantity:  # flatten at the last price
        closing = (SELL if open_quantity > 0 else BUY, abs(open_quantity), fills[-1][2])
        portfolio.apply_fill(order_filled(*closing))
        trades.append(closing)

    proceeds = sum(-side * quantity * price for side, quantity, price in trades)
    assert portfolio.realized_pnl == proceeds * GOOG.notional_factor
    assert portfolio.cash - portfolio.initial_cash == portfolio.realized_pnl - portfolio.fees
    assert portfolio.positions["GOOG"].cost == 0 and not portfolio.positions["GOOG"].lots


def test_when_flat_the_trades_net_pnl_sums_to_realized_pnl_minus_fees() -> None:
    portfolio = new_portfolio()
    apply(
        portfolio,
        order_filled(BUY, 1, 10000),
        order_filled(BUY, 1, 10000),
        order_filled(BUY, 1, 10000),
        order_filled(SELL, 3, 11000, fee=usd(1)),  # $1 per order over three lots
    )

    assert portfolio.position_quantity("GOOG") == 0
    assert sum(t.fees for t in portfolio.closed_trades) == portfolio.fees
    assert sum(t.pnl for t in portfolio.closed_trades) == portfolio.realized_pnl - portfolio.fees


# -- against the venue on real data -------------------------------------------------------
def test_portfolio_reconciles_with_the_paper_exchange_over_the_goog_history() -> None:
    bars = goog_bars()
    clock = TimeWarp.virtual(bars[0].ts)
    bus = MessageBus()
    exchange = PaperExchange(
        clock=clock,
        instruments=[GOOG],
        cash=usd(10000),
        commission=CommissionModel(GOOG, rate="0.002", fixed="1"),
    )
    bus.subscribe(Bar, exchange.on_bar)
    ExecutionEngine(bus=bus, clock=clock, client=PaperBroker(bus=bus, exchange=exchange))
    portfolio = Portfolio(
        bus=bus, ledger=Ledger("USD", 8), instruments=[GOOG], initial_cash=usd(10000)
    )
    checks: list[int] = []
    bus.subscribe(OrderFilled, lambda _: (portfolio.check_balance_equation(), checks.append(1)))

    # Reverse every 20 bars between 90% long and 50% short: longs, shorts and reversals.
    for index, bar in enumerate(bars):
        clock.set(bar.ts)
        bus.publish(bar)
        if index % 20 == 19:
            side = SELL if portfolio.position_quantity("GOOG") > 0 else BUY
            fraction = "0.9" if side is BUY else "0.5"
            for client_order_id, sizing in (
                (f"close-{index}", {"close_position": True}),
                (f"open-{index}", {"equity_fraction": fraction}),
            ):
                request = OrderRequest(
                    client_order_id=client_order_id, symbol="GOOG", side=side, **sizing
                )
                bus.send(ExecuteOrder(strategy="flip", request=request))

    assert len(checks) > 150
    assert portfolio.cash == exchange.cash
    assert portfolio.position_quantity("GOOG") == exchange.positions["GOOG"]
    assert portfolio.equity({"GOOG": bars[-1].close}) == exchange.equity()
    assert any(t.size < 0 for t in portfolio.closed_trades)
    assert any(t.size > 0 for t in portfolio.closed_trades)
