"""Double-entry ledger and the durable journal of events.

The ledger holds exact balances; the journal is the append-only truth they derive from.
"""

from predator.ledger.journal import Journal, JournalClosed
from predator.ledger.ledger import (
    Account,
    BalanceEquationViolated,
    Ledger,
    Posting,
    Transaction,
    UnbalancedTransaction,
)

__all__ = [
    "Account",
    "BalanceEquationViolated",
    "Journal",
    "JournalClosed",
    "Ledger",
    "Posting",
    "Transaction",
    "UnbalancedTransaction",
]
