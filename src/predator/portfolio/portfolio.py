"""The portfolio: our positions, cash and PnL, derived from fills and posted to the ledger.

Every fill becomes one balanced ledger transaction (cash, position at cost, realized
PnL, fees). ``check_balance_equation`` proves, to the smallest money unit, that the
ledger and the portfolio tell the same story.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from predator.core.bus import MessageBus
from predator.execution.order import FillReversed, OrderFilled
from predator.ledger.ledger import (
    Account,
    BalanceEquationViolated,
    Ledger,
    Posting,
    Transaction,
)
from predator.market.instrument import Instrument
from predator.portfolio.position import ClosedTrade, Lot, Position

__all__ = ["FillNotReversible", "Portfolio", "PortfolioCheckpoint", "PortfolioSavedState"]


class FillNotReversible(RuntimeError):
    """A fill cannot be undone exactly (it is not among the fills since the checkpoint)."""


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
    checkpoint: PortfolioCheckpoint | None = None
    """The last checkpoint (see :meth:`Portfolio.checkpoint`), so recovery can reverse."""
    since_checkpoint: list[OrderFilled] = []
    """The fills applied since that checkpoint, in order."""
    transfers_since_checkpoint: int = 0


class PortfolioCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's state at a point reconciliation proved, to reverse a fill exactly.

    Closed trades are kept as their count and the last one (a later fill may move its
    fee remainder onto it); ``balances`` are the pool's own ledger accounts.
    """

    cash: int
    realized_pnl: int
    fees: int
    fills: int
    lots: dict[str, list[tuple[int, int, int, int]]]
    costs: dict[str, int]
    transfers: int
    closed_trades: int
    last_trade: ClosedTrade | None
    balances: dict[str, int]


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
        self._since: list[OrderFilled] = []
        self._transfers_since = 0
        self._checkpoint = self._take_checkpoint()
        if bus is not None:
            bus.subscribe(OrderFilled, self.apply_fill)
            bus.subscribe(FillReversed, self.apply_reversal)

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
            checkpoint=self._checkpoint,
            since_checkpoint=list(self._since),
            transfers_since_checkpoint=self._transfers_since,
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
        self._since = list(saved.since_checkpoint)
        self._transfers_since = saved.transfers_since_checkpoint
        if saved.checkpoint is not None:
            self._checkpoint = saved.checkpoint
        else:  # a snapshot from before checkpoints: reversible from here on
            self._since.clear()
            self._transfers_since = 0
            self._checkpoint = self._take_checkpoint()

    # -- checkpoint and reversal ------------------------------------------------------
    def _own_accounts(self) -> list[str]:
        return [
            self._cash_account,
            self._transfers_account,
            self._capital_account,
            self._pnl_account,
            self._fees_account,
            *self._position_accounts.values(),
        ]

    def _take_checkpoint(self) -> PortfolioCheckpoint:
        balances = self.ledger.balances_view()
        return PortfolioCheckpoint(
            cash=self.cash,
            realized_pnl=self.realized_pnl,
            fees=self.fees,
            fills=self.fills,
            lots={
                symbol: [(lot.quantity, lot.price, lot.entry_ts, lot.entry_fee) for lot in p.lots]
                for symbol, p in self.positions.items()
            },
            costs={symbol: p.cost for symbol, p in self.positions.items()},
            transfers=self.transfers,
            closed_trades=len(self.closed_trades),
            last_trade=self.closed_trades[-1] if self.closed_trades else None,
            balances={a: balances[a] for a in self._own_accounts() if a in balances},
        )

    def checkpoint(self) -> None:
        """Remember the present state (reconciliation proved it): fills applied from
        now on can be reversed exactly by :meth:`reverse_fill`."""
        if not self._since and not self._transfers_since:
            return  # nothing changed since the last one
        self._since.clear()
        self._transfers_since = 0
        self._checkpoint = self._take_checkpoint()

    def fills_since_checkpoint(self) -> list[OrderFilled]:
        """The fills applied since the checkpoint, in order."""
        return list(self._since)

    def applied_since_checkpoint(self, trade_id: str) -> bool:
        """Whether the fill ``trade_id`` was applied since the checkpoint (reversible)."""
        return any(fill.trade_id == trade_id for fill in self._since)

    def apply_reversal(self, event: FillReversed) -> None:
        """Undo the reversed fill if this pool applied it (others are ignored)."""
        if event.account == self.account and self.applied_since_checkpoint(event.trade_id):
            self.reverse_fill(event.trade_id)

    def reverse_fill(self, trade_id: str) -> OrderFilled:
        """Undo the fill ``trade_id`` exactly, as if it had never been applied.

        Restores the checkpoint (state and this pool's ledger accounts), then re-applies
        the fills since it except that one; transfers since it only moved cash and are
        added back. Raises :class:`FillNotReversible` when the fill is not among them.
        """
        reversed_ = next((f for f in self._since if f.trade_id == trade_id), None)
        if reversed_ is None:
            raise FillNotReversible(f"fill {trade_id} is not reversible in pool {self.account}")
        replay = [fill for fill in self._since if fill.trade_id != trade_id]
        transfers = self._transfers_since
        saved = self._checkpoint
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
        del self.closed_trades[saved.closed_trades :]
        if saved.last_trade is not None:
            self.closed_trades[-1] = saved.last_trade
        self.transfers = saved.transfers
        # Every fill posts one transaction; the reversed one is gone, the rest re-posted.
        self.ledger.restore_accounts(
            self._own_accounts(), saved.balances, self.ledger.transactions - len(self._since)
        )
        self._since = []
        self._transfers_since = 0
        for fill in replay:
            self.apply_fill(fill)
        if transfers:
            self.ledger.post(
                Transaction(
                    ts=reversed_.ts,
                    reference=f"transfers since checkpoint {self.account}",
                    postings=self.transfer_postings(transfers),
                )
            )
            self.ledger.transactions -= 1  # the transfers' own transactions still count
            self.book_transfer(transfers)
        return reversed_

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
        self._since.append(fill)
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
        self._transfers_since += delta

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
