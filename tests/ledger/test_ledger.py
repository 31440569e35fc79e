"""Specs for the double-entry Ledger: balanced transactions only, exact balances."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predator.ledger import (
    Account,
    BalanceEquationViolated,
    Ledger,
    Posting,
    Transaction,
    UnbalancedTransaction,
)

DEPOSIT = Transaction(
    ts=0,
    reference="deposit",
    postings=(Posting(Account.CASH, 1_000_000), Posting(Account.CAPITAL, -1_000_000)),
)


def test_a_balanced_transaction_moves_each_account_by_its_posting() -> None:
    ledger = Ledger("USD", precision=8)
    ledger.post(DEPOSIT)
    ledger.post(
        Transaction(
            ts=1,
            reference="buy with fee",
            postings=(
                Posting(Account.position("GOOG"), 600_000),
                Posting(Account.FEES, 1_000),
                Posting(Account.CASH, -601_000),
            ),
        )
    )

    assert ledger.balance(Account.CASH) == 399_000
    assert ledger.balance(Account.CAPITAL) == -1_000_000
    assert ledger.balance("assets:position:GOOG") == 600_000
    assert ledger.balance(Account.FEES) == 1_000
    assert ledger.balance("assets:never-used") == 0
    assert ledger.transactions == 2
    assert ledger.trial_balance() == 0
    ledger.check()


def test_unbalanced_transaction_is_rejected_and_not_applied() -> None:
    ledger = Ledger("USD", precision=8)
    ledger.post(DEPOSIT)
    before = dict(ledger.balances())
    lopsided = Transaction(
        ts=1,
        reference="fill T9",
        postings=(Posting(Account.CASH, -500), Posting(Account.position("GOOG"), 499)),
    )

    with pytest.raises(UnbalancedTransaction, match="fill T9 is unbalanced by -1 units") as info:
        ledger.post(lopsided)

    assert info.value.imbalance == -1
    assert info.value.transaction is lopsided
    assert dict(ledger.balances()) == before
    assert ledger.transactions == 1


def test_balances_lists_every_used_account_in_name_order() -> None:
    ledger = Ledger("USD", precision=8)
    ledger.post(DEPOSIT)
    ledger.post(
        Transaction(
            ts=1, reference="fee", postings=(Posting(Account.FEES, 5), Posting(Account.CASH, -5))
        )
    )

    assert list(ledger.balances()) == sorted([Account.CASH, Account.CAPITAL, Account.FEES])
    assert sum(ledger.balances().values()) == ledger.trial_balance() == 0


def test_check_raises_when_the_books_do_not_balance() -> None:
    ledger = Ledger("USD", precision=8)
    ledger.post(DEPOSIT)
    ledger._balances[Account.CASH] += 7  # tampering no public API allows

    assert ledger.trial_balance() == 7
    with pytest.raises(BalanceEquationViolated) as info:
        ledger.check()
    assert (info.value.expected, info.value.actual) == (0, 7)


def test_post_many_applies_transactions_in_order() -> None:
    ledger = Ledger("USD", precision=8)
    fee = Transaction(
        ts=1, reference="fee", postings=(Posting(Account.FEES, 10), Posting(Account.CASH, -10))
    )
    ledger.post_many([DEPOSIT, fee, fee])

    assert ledger.balance(Account.CASH) == 1_000_000 - 20
    assert ledger.transactions == 3


ACCOUNTS = st.sampled_from(
    [Account.CASH, Account.CAPITAL, Account.FEES, Account.REALIZED_PNL, Account.position("GOOG")]
)
AMOUNTS = st.integers(-(10**18), 10**18)


@st.composite
def balanced_transactions(draw: st.DrawFn) -> Transaction:
    legs = draw(st.lists(st.tuples(ACCOUNTS, AMOUNTS), min_size=1, max_size=5))
    balancing = Posting(draw(ACCOUNTS), -sum(amount for _, amount in legs))
    postings = (*(Posting(a, amount) for a, amount in legs), balancing)
    return Transaction(ts=0, reference="random", postings=postings)


@given(st.lists(balanced_transactions(), max_size=20))
def test_any_sequence_of_balanced_transactions_keeps_the_trial_balance_at_zero(
    transactions: list[Transaction],
) -> None:
    ledger = Ledger("USD", precision=8)
    expected: dict[str, int] = {}
    for transaction in transactions:
        ledger.post(transaction)
        ledger.check()
        for posting in transaction.postings:
            expected[posting.account] = expected.get(posting.account, 0) + posting.amount
    assert {a: ledger.balance(a) for a in expected} == expected
    assert ledger.transactions == len(transactions)


@given(balanced_transactions(), AMOUNTS.filter(bool), ACCOUNTS)
def test_any_unbalanced_transaction_leaves_the_ledger_untouched(
    transaction: Transaction, error: int, account: str
) -> None:
    ledger = Ledger("USD", precision=8)
    ledger.post(DEPOSIT)
    before = dict(ledger.balances())
    broken = Transaction(
        ts=1, reference="broken", postings=(*transaction.postings, Posting(account, error))
    )

    with pytest.raises(UnbalancedTransaction) as info:
        ledger.post(broken)

    assert info.value.imbalance == error
    assert dict(ledger.balances()) == before
    assert ledger.transactions == 1
