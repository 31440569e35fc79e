"""ProfitLossTracker: exact PnL statistics per strategy, per engine and in total.

It is fed closed round trips and keeps ints and Fractions only (no float). Its
profit-allocation rules earmark realized net profit in the ledger, e.g. 70% to debt
repayment and 30% to operations, split exactly to the smallest money unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any

import msgspec

from predator.core.numbers import to_decimal
from predator.ledger.ledger import Ledger, Posting, Transaction
from predator.portfolio.position import ClosedTrade

__all__ = [
    "UNALLOCATED_PROFIT",
    "AllocationRule",
    "PnlStats",
    "ProfitLossTracker",
    "allocation_account",
    "split_exact",
]

UNALLOCATED_PROFIT = "equity:unallocated_profit"
"""Ledger account debited by each profit allocation."""


def allocation_account(rule_name: str) -> str:
    """Ledger account credited with ``rule_name``'s share (``equity:allocated:operational``)."""
    return f"equity:allocated:{rule_name}"


class AllocationRule:
    """Send ``fraction`` of allocated profit to ``name``: ``AllocationRule("ops", "0.3")``.

    ``fraction`` is exact: a ``Fraction``, ``Decimal``, int or decimal string (floats are
    refused, ``0.7`` is not exactly 7/10). It must be in (0, 1].
    """

    __slots__ = ("fraction", "name")

    def __init__(self, name: str, fraction: Fraction | Decimal | int | str) -> None:
        if not name or any(c.isspace() or c == ":" for c in name):
            raise ValueError(
                f"allocation rule name must be non-empty, without ':' or spaces: {name!r}"
            )
        if isinstance(fraction, bool) or not isinstance(fraction, Fraction | Decimal | int | str):
            raise TypeError(
                f"allocation fraction must be exact (Fraction, Decimal, int or str), "
                f"got {type(fraction).__name__}"
            )
        value = Fraction(fraction)
        if not 0 < value <= 1:
            raise ValueError(f"allocation fraction of {name!r} must be in (0, 1], got {value}")
        self.name = name
        self.fraction = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AllocationRule):
            return NotImplemented
        return (self.name, self.fraction) == (other.name, other.fraction)

    def __hash__(self) -> int:
        return hash((self.name, self.fraction))

    def __repr__(self) -> str:
        return f"AllocationRule({self.name!r}, Fraction({self.fraction}))"


def _check_rules(rules: Sequence[AllocationRule]) -> tuple[AllocationRule, ...]:
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"allocation rule names must be unique, got {names}")
    if rules:
        total = sum((rule.fraction for rule in rules), Fraction(0))
        if total != 1:
            raise ValueError(f"allocation fractions must sum to 1, got {total} ({names})")
    return tuple(rules)


def split_exact(amount: int, rules: Sequence[AllocationRule]) -> dict[str, int]:
    """Split ``amount`` units by the rules' fractions, exactly.

    Each rule but the last gets ``floor(amount * fraction)``; the last gets the rest, so
    the shares always sum to ``amount``.

    >>> split_exact(1001, [AllocationRule("debt", "0.7"), AllocationRule("ops", "0.3")])
    {'debt': 700, 'ops': 301}
    """
    if not rules:
        raise ValueError("no allocation rules to split by")
    shares: dict[str, int] = {}
    remaining = amount
    for rule in rules[:-1]:
        share = amount * rule.fraction.numerator // rule.fraction.denominator
        shares[rule.name] = share
        remaining -= share
    shares[rules[-1].name] = remaining
    return shares


class PnlStats(msgspec.Struct, frozen=True, kw_only=True):
    """PnL statistics of one scope (a strategy, an engine or the total), in money units.

    A trade wins when its net ``pnl`` is positive and loses when it is negative; a
    break-even trade is neither and ends both streaks. ``gross_wins`` and
    ``gross_losses`` sum the net PnL of winning and (as a positive number) losing trades.
    """

    trades: int = 0
    wins: int = 0
    losses: int = 0
    gross_pnl: int = 0
    fees: int = 0
    net_pnl: int = 0
    gross_wins: int = 0
    gross_losses: int = 0
    current_win_streak: int = 0
    current_loss_streak: int = 0
    max_win_streak: int = 0
    max_loss_streak: int = 0
    capital: int | None = None
    """Capital allocated to the scope; ``None`` when unknown (no ROI then)."""

    @property
    def win_rate(self) -> Fraction | None:
        """Winning trades over all trades; ``None`` before the first trade."""
        return Fraction(self.wins, self.trades) if self.trades else None

    @property
    def roi(self) -> Fraction | None:
        """Net PnL over allocated capital; ``None`` without positive capital."""
        return Fraction(self.net_pnl, self.capital) if self.capital else None

    @property
    def profit_factor(self) -> Fraction | None:
        """Gross wins over gross losses; ``None`` when there are no losses."""
        return Fraction(self.gross_wins, self.gross_losses) if self.gross_losses else None

    def with_trade(self, trade: ClosedTrade) -> PnlStats:
        """These statistics after one more closed ``trade``."""
        pnl = trade.pnl
        win_streak = self.current_win_streak + 1 if pnl > 0 else 0
        loss_streak = self.current_loss_streak + 1 if pnl < 0 else 0
        return msgspec.structs.replace(
            self,
            trades=self.trades + 1,
            wins=self.wins + (pnl > 0),
            losses=self.losses + (pnl < 0),
            gross_pnl=self.gross_pnl + trade.gross_pnl,
            fees=self.fees + trade.fees,
            net_pnl=self.net_pnl + pnl,
            gross_wins=self.gross_wins + max(pnl, 0),
            gross_losses=self.gross_losses + max(-pnl, 0),
            current_win_streak=win_streak,
            current_loss_streak=loss_streak,
            max_win_streak=max(self.max_win_streak, win_streak),
            max_loss_streak=max(self.max_loss_streak, loss_streak),
        )


class _TradeEntry(msgspec.Struct, frozen=True):
    strategy: str
    engine: str
    trade: ClosedTrade


class ProfitLossTracker:
    """Exact PnL per trade, strategy, engine and in total, plus profit allocation.

    Capital per strategy (:meth:`set_capital`) gives ROI; an engine's capital is the sum
    over its strategies, the total's over all strategies. Each strategy belongs to one
    engine. :meth:`allocate` earmarks realized net profit not yet allocated: allocation
    follows the high-water mark of total net PnL, so losses first eat into the
    unallocated pool and are won back before anything more is allocated.

    >>> from predator.ledger.ledger import Ledger
    >>> tracker = ProfitLossTracker(money_precision=2, allocation_rules=[
    ...     AllocationRule("debt_repayment", "0.7"), AllocationRule("operational", "0.3")])
    >>> tracker.on_trade("sma_cross", "trend", ClosedTrade(
    ...     symbol="GOOG", size=1, entry_ts=0, exit_ts=1, entry_price=100, exit_price=110,
    ...     gross_pnl=1_001, fees=0, pnl=1_001))
    >>> tx = tracker.allocate(2, Ledger("USD", precision=2))
    >>> [(p.account, p.amount) for p in tx.postings]  # doctest: +NORMALIZE_WHITESPACE
    [('equity:unallocated_profit', 1001), ('equity:allocated:debt_repayment', -700),
     ('equity:allocated:operational', -301)]
    """

    def __init__(
        self,
        *,
        money_precision: int,
        allocation_rules: Sequence[AllocationRule] = (),
        ratio_places: int = 6,
    ) -> None:
        if money_precision < 0:
            raise ValueError(f"money_precision must be 0 or more, got {money_precision}")
        if ratio_places < 0:
            raise ValueError(f"ratio_places must be 0 or more, got {ratio_places}")
        self._precision = money_precision
        self._ratio_places = ratio_places
        self._rules = _check_rules(allocation_rules)
        self._capital: dict[str, int] = {}
        self._engine_of: dict[str, str] = {}
        self._strategies: dict[str, PnlStats] = {}
        self._engines: dict[str, PnlStats] = {}
        self._total = PnlStats()
        self._trades: list[_TradeEntry] = []
        self._allocated = 0
        self._allocated_by_rule: dict[str, int] = {rule.name: 0 for rule in self._rules}
        self._allocations = 0

    # -- configuration ------------------------------------------------------------------
    @property
    def money_precision(self) -> int:
        """Decimals of the money unit (2: amounts are cents)."""
        return self._precision

    @property
    def allocation_rules(self) -> tuple[AllocationRule, ...]:
        """The profit-allocation rules, in posting order (the last takes the remainder)."""
        return self._rules

    def set_allocation_rules(self, rules: Sequence[AllocationRule]) -> None:
        """Replace the allocation rules (fractions must sum to 1; ``ValueError`` if not)."""
        self._rules = _check_rules(rules)
        for rule in self._rules:
            self._allocated_by_rule.setdefault(rule.name, 0)

    def set_capital(self, strategy: str, amount: int) -> None:
        """Capital (money units) allocated to ``strategy``; ROI is net PnL over it."""
        if amount < 0:
            raise ValueError(f"capital of {strategy!r} cannot be negative, got {amount}")
        self._capital[strategy] = amount

    def capital_of(self, strategy: str) -> int:
        """Capital allocated to ``strategy`` (0 when none was set)."""
        return self._capital.get(strategy, 0)

    # -- feeding ------------------------------------------------------------------------
    def on_trade(self, strategy: str, engine: str, trade: ClosedTrade) -> None:
        """Account for one closed round trip of ``strategy`` running in ``engine``."""
        known = self._engine_of.setdefault(strategy, engine)
        if known != engine:
            raise ValueError(
                f"strategy {strategy!r} runs in engine {known!r}, not {engine!r}; "
                f"a strategy belongs to one engine"
            )
        empty = PnlStats()
        self._strategies[strategy] = self._strategies.get(strategy, empty).with_trade(trade)
        self._engines[engine] = self._engines.get(engine, empty).with_trade(trade)
        self._total = self._total.with_trade(trade)
        self._trades.append(_TradeEntry(strategy, engine, trade))

    # -- reading ------------------------------------------------------------------------
    def total(self) -> PnlStats:
        """Statistics over every trade, with the capital of all strategies."""
        capital = sum(self._capital.values()) if self._capital else None
        return msgspec.structs.replace(self._total, capital=capital)

    def strategy(self, name: str) -> PnlStats:
        """Statistics of strategy ``name`` (all zero before its first trade)."""
        stats = self._strategies.get(name, PnlStats())
        return msgspec.structs.replace(stats, capital=self._capital.get(name))

    def engine(self, name: str) -> PnlStats:
        """Statistics of engine ``name``, with the capital of its strategies."""
        stats = self._engines.get(name, PnlStats())
        capitals = [c for s, c in self._capital.items() if self._engine_of.get(s) == name]
        return msgspec.structs.replace(stats, capital=sum(capitals) if capitals else None)

    def strategies(self) -> list[str]:
        """Names of the strategies that traded or have capital, sorted."""
        return sorted(set(self._strategies) | set(self._capital))

    def engines(self) -> list[str]:
        """Names of the engines that traded, sorted."""
        return sorted(self._engines)

    def trades(self) -> list[tuple[str, str, ClosedTrade]]:
        """Every trade fed, in order, as ``(strategy, engine, trade)``."""
        return [(e.strategy, e.engine, e.trade) for e in self._trades]

    # -- profit allocation --------------------------------------------------------------
    @property
    def allocated(self) -> int:
        """Profit allocated so far (money units); it never decreases."""
        return self._allocated

    @property
    def unallocated(self) -> int:
        """Total net PnL not yet allocated; negative while losses are being won back."""
        return self._total.net_pnl - self._allocated

    def allocated_by_rule(self) -> dict[str, int]:
        """Profit allocated to each rule so far."""
        return dict(self._allocated_by_rule)

    def allocate(self, ts: int, ledger: Ledger) -> Transaction | None:
        """Post the allocation of unallocated profit to ``ledger`` and return it.

        Debits :data:`UNALLOCATED_PROFIT` by the pool and credits each rule's
        :func:`allocation_account` by its exact share (zero shares are left out).
        Returns ``None`` when there is nothing positive to allocate.
        """
        if not self._rules:
            raise ValueError("no allocation rules configured; call set_allocation_rules()")
        if ledger.precision != self._precision:
            raise ValueError(
                f"ledger precision {ledger.precision} differs from the tracker's "
                f"money_precision {self._precision}"
            )
        amount = self.unallocated
        if amount <= 0:
            return None
        shares = split_exact(amount, self._rules)
        postings = [Posting(UNALLOCATED_PROFIT, amount)]
        postings.extend(
            Posting(allocation_account(name), -share) for name, share in shares.items() if share
        )
        transaction = Transaction(
            ts=ts, reference=f"profit_allocation:{self._allocations + 1}", postings=tuple(postings)
        )
        ledger.post(transaction)
        self._allocations += 1
        self._allocated += amount
        for name, share in shares.items():
            self._allocated_by_rule[name] = self._allocated_by_rule.get(name, 0) + share
        return transaction

    # -- export -------------------------------------------------------------------------
    def export(self, *, include_trades: bool = True) -> dict[str, Any]:
        """Everything as JSON-ready builtins: money as decimal strings, ratios rounded
        half-even to ``ratio_places`` decimals (``None`` where undefined)."""
        result: dict[str, Any] = {
            "money_precision": self._precision,
            "total": self._stats_dict(self.total()),
            "engines": {name: self._stats_dict(self.engine(name)) for name in self.engines()},
            "strategies": {
                name: {"engine": self._engine_of.get(name), **self._stats_dict(self.strategy(name))}
                for name in self.strategies()
            },
            "allocation": {
                "rules": [
                    {"name": rule.name, "fraction": self._ratio(rule.fraction)}
                    for rule in self._rules
                ],
                "allocated": self._money(self._allocated),
                "unallocated": self._money(self.unallocated),
                "by_rule": {
                    name: self._money(amount)
                    for name, amount in sorted(self._allocated_by_rule.items())
                },
            },
        }
        if include_trades:
            result["trades"] = [self._trade_dict(entry) for entry in self._trades]
        return result

    def to_json(self, *, include_trades: bool = True) -> bytes:
        """:meth:`export` encoded as JSON."""
        return msgspec.json.encode(self.export(include_trades=include_trades))

    def _money(self, units: int | None) -> str | None:
        return None if units is None else f"{to_decimal(units, self._precision):f}"

    def _ratio(self, value: Fraction | None) -> str | None:
        if value is None:
            return None
        with localcontext() as ctx:
            ctx.prec = max(28, len(str(abs(value.numerator))) + self._ratio_places + 2)
            exact = Decimal(value.numerator) / Decimal(value.denominator)
            quantum = Decimal(1).scaleb(-self._ratio_places)
            return f"{exact.quantize(quantum, rounding=ROUND_HALF_EVEN):f}"

    def _stats_dict(self, stats: PnlStats) -> dict[str, Any]:
        return {
            "trades": stats.trades,
            "wins": stats.wins,
            "losses": stats.losses,
            "win_rate": self._ratio(stats.win_rate),
            "gross_pnl": self._money(stats.gross_pnl),
            "fees": self._money(stats.fees),
            "net_pnl": self._money(stats.net_pnl),
            "gross_wins": self._money(stats.gross_wins),
            "gross_losses": self._money(stats.gross_losses),
            "profit_factor": self._ratio(stats.profit_factor),
            "capital": self._money(stats.capital),
            "roi": self._ratio(stats.roi),
            "current_win_streak": stats.current_win_streak,
            "current_loss_streak": stats.current_loss_streak,
            "max_win_streak": stats.max_win_streak,
            "max_loss_streak": stats.max_loss_streak,
        }

    def _trade_dict(self, entry: _TradeEntry) -> dict[str, Any]:
        trade = entry.trade
        return {
            "strategy": entry.strategy,
            "engine": entry.engine,
            "symbol": trade.symbol,
            "size": trade.size,
            "entry_ts": trade.entry_ts,
            "exit_ts": trade.exit_ts,
            "entry_price": trade.entry_price,
            "exit_price": trade.exit_price,
            "gross_pnl": self._money(trade.gross_pnl),
            "fees": self._money(trade.fees),
            "pnl": self._money(trade.pnl),
        }
