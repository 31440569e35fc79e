"""Double-entry ledger and the durable journal of events.

The ledger holds exact balances; the journal is the append-only truth they derive from,
kept by a swappable store (SQLite, PostgreSQL, in-process) and checked by its hash chain.
"""

from predator.ledger.journal import (
    ChainBreak,
    Journal,
    JournalClosed,
    JournalCorrupted,
    JournalRecord,
    verify_chain,
)
from predator.ledger.ledger import (
    Account,
    BalanceEquationViolated,
    Ledger,
    Posting,
    Transaction,
    UnbalancedTransaction,
)
from predator.ledger.postgres_store import PostgresStore
from predator.ledger.stores import (
    JournalStore,
    MemoryStore,
    SeqConflict,
    SqliteStore,
    open_store,
)

__all__ = [
    "Account",
    "BalanceEquationViolated",
    "ChainBreak",
    "Journal",
    "JournalClosed",
    "JournalCorrupted",
    "JournalRecord",
    "JournalStore",
    "Ledger",
    "MemoryStore",
    "PostgresStore",
    "Posting",
    "SeqConflict",
    "SqliteStore",
    "Transaction",
    "UnbalancedTransaction",
    "open_store",
    "verify_chain",
]
