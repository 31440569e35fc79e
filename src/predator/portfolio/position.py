"""Positions as FIFO lots, and the round-trip trades they close.

FIFO lots keep realized PnL exact (each lot remembers its entry price) and give the
trade list that backtesting engines report; the average price is derived for display.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction

import msgspec

__all__ = ["ClosedTrade", "Lot", "Position"]


class Lot:
    """An open slice of a position: signed quantity, entry price/time, unattributed fee."""

    __slots__ = ("entry_fee", "entry_ts", "price", "quantity")

    def __init__(self, quantity: int, price: int, entry_ts: int, entry_fee: int) -> None:
        self.quantity = quantity
        self.price = price
        self.entry_ts = entry_ts
        self.entry_fee = entry_fee


class ClosedTrade(msgspec.Struct, frozen=True, kw_only=True):
    """A closed round trip. ``size`` is signed (short < 0); money in money units.

    ``pnl`` is net of ``fees`` (entry fee share + exit fee share), like backtesting.py.
    """

    symbol: str
    size: int
    entry_ts: int
    exit_ts: int
    entry_price: int
    exit_price: int
    gross_pnl: int
    fees: int
    pnl: int


class Position:
    """The open position in one instrument: FIFO lots and their total signed cost."""

    __slots__ = ("cost", "lots", "quantity", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.lots: deque[Lot] = deque()
        self.quantity = 0
        self.cost = 0  # sum of lot quantity * price * notional factor (signed)

    def average_price(self) -> Fraction | None:
        """Average entry price at price scale (exact), ``None`` when flat."""
        if not self.quantity:
            return None
        return Fraction(sum(lot.quantity * lot.price for lot in self.lots), self.quantity)
