"""The L2 venue's books of account: cash, positions, marks, margin and fee booking.

Same rules as the bar-mode :class:`~predator.venue.paper_exchange.PaperExchange` (a
position is valued at the venue's mark; ``leverage`` is 1 / margin requirement), plus
what resting orders need: margin *reserved* by open orders, so a client cannot post more
than it could pay for. Every amount is an exact int (or Fraction) of money units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from math import floor

from predator.market.instrument import Instrument
from predator.venue.fees import CommissionModel
from predator.venue.l2_orders import L2Order, reference_price
from predator.venue.orders import Liquidity, Side
from predator.venue.paper_exchange import VenueAccount, move_cash

__all__ = ["L2Accounts"]


class L2Accounts:
    """Cash and positions of every sub-account, and the marks they are valued at."""

    __slots__ = ("_factors", "_unit_leverage", "accounts", "commission", "leverage", "marks")

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        commission: Mapping[str, CommissionModel],
        leverage: Fraction,
    ) -> None:
        self.commission = commission
        self.leverage = leverage
        self._unit_leverage = leverage == 1
        self._factors = {s: i.notional_factor for s, i in instruments.items()}
        self.accounts: dict[str, VenueAccount] = {}
        self.marks: dict[str, int] = {}

    def open(self, name: str, cash: int, symbols: Iterable[str]) -> VenueAccount:
        if name in self.accounts:
            raise ValueError(f"venue account {name!r} already exists")
        account = VenueAccount(name, cash, symbols)
        self.accounts[name] = account
        return account

    # -- valuation ----------------------------------------------------------------------
    def equity(self, account: str) -> int:
        """Cash plus open positions at their marks."""
        book = self.accounts[account]
        equity = book.cash
        for symbol, quantity in book.positions.items():
            if quantity:
                equity += quantity * self.marks[symbol] * self._factors[symbol]
        return equity

    def margin_available(self, account: str) -> Fraction | int:
        """Equity not tied up as margin by open positions (never negative)."""
        used = 0
        for symbol, quantity in self.accounts[account].positions.items():
            if quantity:
                used += abs(quantity) * self.marks[symbol] * self._factors[symbol]
        if self._unit_leverage:
            return max(0, self.equity(account) - used)
        return max(Fraction(0), self.equity(account) - used / self.leverage)

    def closable(self, account: str, symbol: str, side: Side) -> int:
        """How much an order of ``side`` can close of ``account``'s position."""
        position = self.accounts[account].positions[symbol]
        return abs(position) if position * side < 0 else 0

    # -- margin for orders --------------------------------------------------------------
    def opening_cost(
        self, symbol: str, legs: Iterable[tuple[int, int]], closable: int, fixed: bool
    ) -> tuple[Fraction | int, int]:
        """Cost (notional + worst-case fee) of the part of ``legs`` that opens exposure
        once ``closable`` is used up; returns ``(cost, closable left)``."""
        commission = self.commission[symbol]
        cost: Fraction | int = commission.fixed if fixed else 0
        for price, quantity in legs:
            opening = max(0, quantity - closable)
            closable = max(0, closable - quantity)
            if opening:
                cost += opening * self.unit_cost(symbol, price)
        return cost, closable

    def reserved(self, account: str, orders: Iterable[L2Order]) -> Fraction | int:
        """Margin held by ``account``'s open ``orders`` (in arrival order): each side's
        orders first use up what they can close, the rest must be paid for."""
        closable = {}
        total: Fraction | int = 0
        for order in orders:
            if order.request.account != account or order.reduces_only:
                continue
            key = (order.symbol, order.side)
            if key not in closable:
                closable[key] = self.closable(account, order.symbol, order.side)
            price = reference_price(order.request)
            cost, closable[key] = self.opening_cost(
                order.symbol, [(price, order.leaves)], closable[key], not order.first_fill_done
            )
            total += cost
        return total

    def buying_power(self, account: str, orders: Iterable[L2Order]) -> Fraction | int:
        """What ``account`` may still commit to new exposure (never negative)."""
        power = self.margin_available(account) * self.leverage - self.reserved(account, orders)
        return power if power > 0 else 0

    # -- transfers between sub-accounts --------------------------------------------------
    def transferable(self, account: str, orders: Iterable[L2Order]) -> int:
        """Money units ``account`` may move out now: free cash its positions' margin and
        its open orders do not need (0 for an unknown account)."""
        book = self.accounts.get(account)
        if book is None:
            return 0
        free = self.margin_available(account) - Fraction(self.reserved(account, orders)) / (
            self.leverage
        )
        return max(0, min(book.cash, floor(free)))

    def transfer(
        self,
        from_account: str,
        to_account: str,
        amount: int,
        orders: Iterable[L2Order],
        *,
        halted: bool,
    ) -> None:
        """Move ``amount`` of free cash, or raise :class:`TransferRefused` (nothing moves),
        with the same rules as the bar-mode venue's ``transfer``."""
        move_cash(
            self.accounts,
            from_account,
            to_account,
            amount,
            halted=halted,
            free=lambda: self.transferable(from_account, orders),
        )

    # -- fills --------------------------------------------------------------------------
    def affordable_at_fill(
        self, account: str, symbol: str, side: Side, price: int, quantity: int, first: bool
    ) -> bool:
        """Whether a fill fits the account's margin once its closing leg is done."""
        book = self.accounts[account]
        closable = self.closable(account, symbol, side)
        opening = quantity - min(quantity, closable)
        if not opening:
            return True
        closing = quantity - opening
        position, saved_cash = book.positions[symbol], book.cash
        book.cash -= side * closing * price * self._factors[symbol]
        book.positions[symbol] = position + side * closing
        try:
            available = self.margin_available(account) * self.leverage
        finally:
            book.cash, book.positions[symbol] = saved_cash, position
        commission = self.commission[symbol]
        needed = opening * self.unit_cost(symbol, price) + (commission.fixed if first else 0)
        return needed <= available

    def book_fill(
        self,
        account: str,
        symbol: str,
        side: Side,
        price: int,
        quantity: int,
        liquidity: Liquidity,
        first: bool,
    ) -> int:
        """Move cash and position for a fill; returns the fee charged (exact)."""
        fee = self.commission[symbol].fee(price, quantity, first_fill=first, liquidity=liquidity)
        book = self.accounts[account]
        book.cash -= side * quantity * price * self._factors[symbol] + fee
        book.positions[symbol] += side * quantity
        self.marks.setdefault(symbol, price)
        return fee

    def unit_cost(self, symbol: str, price: int) -> Fraction | int:
        """Money per size unit at ``price``, with the worse of the taker and maker fee
        rates (a resting order may fill either way)."""
        commission = self.commission[symbol]
        unit = commission.unit_cost(price)
        if commission.maker_rate > commission.rate:
            unit += (commission.maker_rate - commission.rate) * price * self._factors[symbol]
        return unit
