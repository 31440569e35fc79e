"""The portfolio: our positions, cash and PnL, derived from fills and posted to the ledger.

Every fill becomes one balanced ledger transaction (cash, position at cost, realized
PnL, fees). ``check_balance_equation`` proves, to the smallest money unit, that the
ledger and the portfolio tell the same story.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from predator.core.bus import MessageBus
from predator.execution.order import OrderFilled
from predator.ledger.ledger import (
    Account,
    BalanceEquationViolated,
    Ledger,
    Posting,
    Transaction,
)
from predator.market.instrument import Instrument
from predator.portfolio.position import ClosedTrade, Lot, Position

__all__ = ["Portfolio", "PortfolioSavedState"]


class PortfolioSavedState(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's derived state as a snapshot keeps it (lots as quantity, price, ts, fee)."""

    account: str
    cash: int
    realized_pnl: int
    fees: int
    fills: int
    lots: dict[str, list[tuple[int, int, int, int]]]
    costs: dict[str, int]
    closed_trades: list[ClosedTrade]
    transfers: int = 0
    """Net capital transferred in from other pools (out: negative)."""


class Portfolio:
    """Positions long and short, cash, realized/unrealized PnL and fees, exactly.

    Money amounts are ints in ``money_precision`` units; quantities and prices at the
    instrument's scales.
    """

    def __init__(
        self,
        *,
        bus: MessageBus | None,
        ledger: Ledger,
        instruments: Iterable[Instrument],
        initial_cash: int,
        ts: int = 0,
        account: str = "main",
    ) -> None:
        self.account = account
        self.instruments = {i.symbol: i for i in instruments}
        self.ledger = ledger
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.realized_pnl = 0
        self.fees = 0
        self.positions: dict[str, Position] = {s: Position(s) for s in self.instruments}
        self.closed_trades: list[ClosedTrade] = []
        self.fills = 0
        self.transfers = 0
        """Net capital transferred in from other pools (money units; out is negative)."""
        self._cash_account = Account.in_pool(Account.CASH, account)
        self._transfers_account = Account.in_pool(Account.TRANSFERS, account)
        self._capital_account = Account.in_pool(Account.CAPITAL, account)
        self._pnl_account = Account.in_pool(Account.REALIZED_PNL, account)
        self._fees_account = Account.in_pool(Account.FEES, account)
        ledger.post(
            Transaction(
                ts=ts,
                reference=f"initial capital {account}",
                postings=(
                    Posting(self._cash_account, initial_cash),
                    Posting(self._capital_account, -initial_cash),
                ),
            )
        )
        self._position_accounts = {s: Account.position(s, account) for s in self.instruments}
        self._factors = {s: i.notional_factor for s, i in self.instruments.items()}
        if bus is not None:
            bus.subscribe(OrderFilled, self.apply_fill)

    # -- durable state ------------------------------------------------------------------
    def export_state(self) -> PortfolioSavedState:
        """Cash, PnL, fees, lots and closed trades, for a snapshot of derived state."""
        return PortfolioSavedState(
            account=self.account,
            cash=self.cash,
            realized_pnl=self.realized_pnl,
            fees=self.fees,
            fills=self.fills,
            lots={
                symbol: [(lot.quantity, lot.price, lot.entry_ts, lot.entry_fee) for lot in p.lots]
                for symbol, p in self.positions.items()
            },
            costs={symbol: p.cost for symbol, p in self.positions.items()},
            closed_trades=list(self.closed_trades),
            transfers=self.transfers,
        )

    def load_state(self, saved: PortfolioSavedState) -> None:
        """Take the state :meth:`export_state` gave (the ledger is restored separately)."""
        if saved.account != self.account:
            raise ValueError(f"state of pool {saved.account!r} given to pool {self.account!r}")
        self.cash = saved.cash
        self.realized_pnl = saved.realized_pnl
        self.fees = saved.fees
        self.fills = saved.fills
        for symbol, lots in saved.lots.items():
            position = self.positions[symbol]
            position.lots.clear()
            position.lots.extend(Lot(*lot) for lot in lots)
            position.quantity = sum(lot[0] for lot in lots)
            position.cost = saved.costs[symbol]
        self.closed_trades = list(saved.closed_trades)
        self.transfers = saved.transfers

    # -- fills ------------------------------------------------------------------------
    def apply_fill(self, fill: OrderFilled) -> None:
        """Apply one fill of this portfolio's account (others are ignored).

        FIFO lots, cash, realized PnL, fees and one balanced ledger posting.
        """
        if fill.account != self.account:
            return
        symbol = fill.symbol
        factor = self._factors[symbol]
        position = self.positions[symbol]
        signed = fill.side * fill.quantity
        price = fill.price
        remaining = fill.quantity
        fee_left = fill.fee
        closed_cost = 0
        gross_total = 0
        lots = position.lots
        while remaining and lots and lots[0].quantity * signed < 0:
            lot = lots[0]
            lot_size = abs(lot.quantity)
            take = min(remaining, lot_size)
            direction = 1 if lot.quantity > 0 else -1
            # Fee shares: proportional, floor, the remainder stays with what is left.
            exit_fee = fill.fee * take // fill.quantity
            entry_fee = lot.entry_fee * take // lot_size
            fee_left -= exit_fee
            cost = direction * take * lot.price * factor
            gross = direction * take * (price - lot.price) * factor
            closed_cost += cost
            gross_total += gross
            self.closed_trades.append(
                ClosedTrade(
                    symbol=symbol,
                    size=direction * take,
                    entry_ts=lot.entry_ts,
                    exit_ts=fill.ts,
                    entry_price=lot.price,
                    exit_price=price,
                    gross_pnl=gross,
                    fees=entry_fee + exit_fee,
                    pnl=gross - entry_fee - exit_fee,
                )
            )
            if take == lot_size:
                lots.popleft()
            else:
                lot.quantity -= direction * take
                lot.entry_fee -= entry_fee
            remaining -= take
        if fee_left and not remaining and self.closed_trades and fill.fee:
            # The fill opened nothing: the rounding remainder of its fee belongs to the
            # last trade it closed, so trade PnLs sum to realized PnL minus fees.
            last = self.closed_trades[-1]
            self.closed_trades[-1] = msgspec.structs.replace(
                last, fees=last.fees + fee_left, pnl=last.pnl - fee_left
            )
            fee_left = 0
        opened_cost = 0
        if remaining:
            direction = 1 if signed > 0 else -1
            lots.append(Lot(direction * remaining, price, fill.ts, fee_left))
            opened_cost = direction * remaining * price * factor
        cash_delta = -signed * price * factor - fill.fee
        self.cash += cash_delta
        self.realized_pnl += gross_total
        self.fees += fill.fee
        position.quantity += signed
        position.cost += opened_cost - closed_cost
        self.fills += 1
        postings = [Posting(self._cash_account, cash_delta)]
        if opened_cost or closed_cost:
            postings.append(Posting(self._position_accounts[symbol], opened_cost - closed_cost))
        if gross_total:
            postings.append(Posting(self._pnl_account, -gross_total))
        if fill.fee:
            postings.append(Posting(self._fees_account, fill.fee))
        self.ledger.post(
            Transaction(ts=fill.ts, reference=f"fill {fill.trade_id}", postings=tuple(postings))
        )

    # -- capital transfers ------------------------------------------------------------
    def transfer_postings(self, delta: int) -> tuple[Posting, Posting]:
        """This pool's two legs of a transfer of ``delta`` money units in (out if < 0).

        Cash moves by ``delta`` against the pool's ``equity:transfers`` account, so each
        pool's legs balance on their own and the transfer between two pools is one
        balanced transaction (see :mod:`predator.portfolio.transfers`).
        """
        return (Posting(self._cash_account, delta), Posting(self._transfers_account, -delta))

    def book_transfer(self, delta: int) -> None:
        """Move cash and net transfers by ``delta`` after its postings were posted."""
        self.cash += delta
        self.transfers += delta

    # -- valuation --------------------------------------------------------------------
    def position_quantity(self, symbol: str) -> int:
        """Signed open quantity of ``symbol`` (size-precision units)."""
        return self.positions[symbol].quantity

    def unrealized_pnl(self, marks: Mapping[str, int]) -> int:
        """Open positions' PnL at ``marks`` (price per symbol), in money units."""
        total = 0
        for symbol, position in self.positions.items():
            if position.quantity:
                value = position.quantity * marks[symbol] * self.instruments[symbol].notional_factor
                total += value - position.cost
        return total

    def equity(self, marks: Mapping[str, int]) -> int:
        """Cash plus open positions valued at ``marks``."""
        equity = self.cash
        for symbol, position in self.positions.items():
            if position.quantity:
                factor = self.instruments[symbol].notional_factor
                equity += position.quantity * marks[symbol] * factor
        return equity

    # -- invariants -------------------------------------------------------------------
    def check_balance_equation(self) -> None:
        """Raise :class:`BalanceEquationViolated` unless ledger and portfolio agree exactly.

        Checks: the trial balance is zero; ledger cash = portfolio cash; each position
        account = that position's cost; capital + realized PnL - fees = cash + positions
        at cost; and each position's cost equals the sum of its lots. Capital moved in
        from other pools counts as capital: cash + positions at cost = initial capital +
        realized PnL - fees + net transfers, and the ledger's transfers account holds
        exactly the net transfers.
        """
        ledger = self.ledger
        balances = ledger.balances_view()
        total = 0
        for amount in balances.values():
            total += amount
        if total:
            raise BalanceEquationViolated("trial balance", 0, total)
        cash = balances.get(self._cash_account, 0)
        if cash != self.cash:
            raise BalanceEquationViolated("ledger cash vs portfolio cash", self.cash, cash)
        at_cost = 0
        for symbol, position in self.positions.items():
            lots_cost = 0
            lots_quantity = 0
            for lot in position.lots:
                lots_quantity += lot.quantity
                lots_cost += lot.quantity * lot.price
            lots_cost *= self._factors[symbol]
            if lots_quantity != position.quantity:
                raise BalanceEquationViolated(
                    f"{symbol} quantity of the lots vs the position",
                    position.quantity,
                    lots_quantity,
                )
            if lots_cost != position.cost:
                raise BalanceEquationViolated(
                    f"{symbol} cost of the lots vs the position", position.cost, lots_cost
                )
            account = balances.get(self._position_accounts[symbol], 0)
            if account != position.cost:
                raise BalanceEquationViolated(
                    f"ledger {symbol} position at cost", position.cost, account
                )
            at_cost += position.cost
        transferred = -balances.get(self._transfers_account, 0)
        if transferred != self.transfers:
            raise BalanceEquationViolated(
                "ledger transfers vs portfolio transfers", self.transfers, transferred
            )
        expected = self.initial_cash + self.realized_pnl - self.fees + self.transfers
        if self.cash + at_cost != expected:
            raise BalanceEquationViolated(
                "cash + positions at cost vs capital + realized - fees +/- transfers",
                expected,
                self.cash + at_cost,
            )
