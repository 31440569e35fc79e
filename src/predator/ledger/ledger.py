"""Double-entry ledger: every movement of money is a balanced transaction.

Balances are exact ints (debit positive, credit negative) in the ledger's money unit.
The balance equation — the sum of all balances is zero, i.e. assets equal capital plus
income minus expenses — holds after every posting, to the smallest unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import msgspec

__all__ = [
    "Account",
    "BalanceEquationViolated",
    "Ledger",
    "Posting",
    "Transaction",
    "UnbalancedTransaction",
]


class Account:
    """Well-known account names; instrument positions are ``position_account(symbol)``."""

    CASH = "assets:cash"
    CAPITAL = "equity:capital"
    REALIZED_PNL = "income:realized_pnl"
    FEES = "expenses:fees"
    TRANSFERS = "equity:transfers"

    @staticmethod
    def position(symbol: str, pool: str = "main") -> str:
        """The account holding ``symbol``'s open position at cost (signed: short < 0)."""
        if pool == "main":
            return f"assets:position:{symbol}"
        return f"assets:position:{pool}:{symbol}"

    @staticmethod
    def in_pool(name: str, pool: str) -> str:
        """``name`` for the capital pool ``pool`` (``assets:cash:trend``); main keeps ``name``."""
        return name if pool == "main" else f"{name}:{pool}"


class Posting(msgspec.Struct, frozen=True, array_like=True):
    """One leg of a transaction: ``amount`` > 0 debits ``account``, < 0 credits it."""

    account: str
    amount: int


class Transaction(msgspec.Struct, frozen=True, kw_only=True):
    """A set of postings that sums to zero, with the event that caused it."""

    ts: int
    reference: str
    postings: tuple[Posting, ...]


class UnbalancedTransaction(ValueError):
    """A transaction's postings do not sum to zero; it was not applied."""

    def __init__(self, transaction: Transaction) -> None:
        total = sum(p.amount for p in transaction.postings)
        super().__init__(
            f"transaction {transaction.reference} is unbalanced by {total} units; not applied"
        )
        self.transaction = transaction
        self.imbalance = total


class BalanceEquationViolated(AssertionError):
    """The books do not balance, or disagree with the state derived elsewhere."""

    def __init__(self, detail: str, expected: int, actual: int) -> None:
        super().__init__(f"{detail}: expected {expected}, got {actual} (diff {actual - expected})")
        self.detail = detail
        self.expected = expected
        self.actual = actual


class Ledger:
    """An exact double-entry ledger in one currency.

    >>> ledger = Ledger("USD", precision=2)
    >>> ledger.post(Transaction(ts=0, reference="deposit", postings=(
    ...     Posting(Account.CASH, 1_000_000), Posting(Account.CAPITAL, -1_000_000))))
    >>> ledger.balance(Account.CASH)
    1000000
    """

    def __init__(self, currency: str, precision: int) -> None:
        self.currency = currency
        self.precision = precision
        self._balances: dict[str, int] = {}
        self.transactions = 0

    def post(self, transaction: Transaction) -> None:
        """Apply ``transaction`` atomically, or raise :class:`UnbalancedTransaction`."""
        total = 0
        for posting in transaction.postings:
            total += posting.amount
        if total:
            raise UnbalancedTransaction(transaction)
        balances = self._balances
        for posting in transaction.postings:
            balances[posting.account] = balances.get(posting.account, 0) + posting.amount
        self.transactions += 1

    def restore_balances(self, balances: Mapping[str, int], transactions: int) -> None:
        """Replace every balance (a snapshot of derived state); the books must balance."""
        if sum(balances.values()):
            raise BalanceEquationViolated("restored trial balance", 0, sum(balances.values()))
        self._balances = dict(balances)
        self.transactions = transactions

    def restore_accounts(
        self, accounts: Iterable[str], balances: Mapping[str, int], transactions: int
    ) -> None:
        """Set ``accounts`` to ``balances`` (an account missing there was never used) and
        the transaction count. They must be a pool's own accounts, which balance among
        themselves: the trial balance stays zero."""
        accounts = list(accounts)
        before = sum(self._balances.get(account, 0) for account in accounts)
        after = sum(balances.get(account, 0) for account in accounts)
        if before != after:
            raise BalanceEquationViolated("restored accounts", before, after)
        for account in accounts:
            if account in balances:
                self._balances[account] = balances[account]
            else:
                self._balances.pop(account, None)
        self.transactions = transactions

    def post_many(self, transactions: Iterable[Transaction]) -> None:
        """Post each transaction in order."""
        for transaction in transactions:
            self.post(transaction)

    def balance(self, account: str) -> int:
        """Debit-positive balance of ``account`` (0 if never used)."""
        return self._balances.get(account, 0)

    def balances(self) -> Mapping[str, int]:
        """All balances, by account name (sorted for stable output)."""
        return dict(sorted(self._balances.items()))

    def balances_view(self) -> Mapping[str, int]:
        """Live read-only view of the balances (no copy; for hot invariant checks)."""
        return MappingProxyType(self._balances)

    def trial_balance(self) -> int:
        """Sum of all balances; zero when the books balance."""
        return sum(self._balances.values())

    def check(self) -> None:
        """Raise :class:`BalanceEquationViolated` unless the books balance exactly."""
        total = self.trial_balance()
        if total:
            raise BalanceEquationViolated("trial balance", 0, total)
