"""Journal stores: where the journal's records live, behind one small interface.

A :class:`JournalStore` keeps rows ``(seq, ts, type, payload, chain)`` and run-level meta
facts; the :class:`~predator.ledger.journal.Journal` encodes and chains, the store only keeps
bytes. :func:`open_store` picks one by URL: SQLite (the default), PostgreSQL or in-process.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal, Protocol, get_args, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from predator.ledger.postgres_store import PostgresStore

__all__ = [
    "GENESIS",
    "SNAPSHOTS_KEPT",
    "SUPPORTED_URLS",
    "JournalStore",
    "MemoryStore",
    "SeqConflict",
    "SqliteStore",
    "StoredRow",
    "StoredSnapshot",
    "Synchronous",
    "open_store",
    "redact_url",
]

GENESIS = bytes(16)
"""The chain value before the first record (what an empty store's tail reports)."""

StoredRow = tuple[int, int, str, bytes, bytes]
"""One stored record: ``(seq, ts, type, payload bytes exactly as chained, chain value)``."""

StoredSnapshot = tuple[int, bytes, bytes]
"""One stored snapshot: ``(seq of the last record it covers, that record's chain, payload)``."""

SNAPSHOTS_KEPT = 2
"""Snapshots a store keeps: the newest, and one before it in case the newest is damaged."""

Synchronous = Literal["NORMAL", "FULL"]
"""SQLite ``synchronous`` level: NORMAL (simulation; WAL-safe) or FULL (live; power-loss safe)."""

SUPPORTED_URLS = (
    "sqlite:///relative/path, sqlite:////absolute/path, sqlite:///:memory:, "
    "postgresql://[user@]host[:port]/db[?journal=NAME], postgres://..., memory://, "
    "or a plain file path (SQLite)"
)
"""What :func:`open_store` accepts, for error messages and help texts."""


class SeqConflict(ValueError):
    """A batch held a sequence number that is already stored; nothing of it was written.

    In a healthy system this means a second writer appended to the same journal: the
    node is the journal's only writer (ARCHITECTURE.md section 5).
    """


@runtime_checkable
class JournalStore(Protocol):
    """Durable home of the journal's rows. Real (SQLite, PostgreSQL) and in-process.

    A store never interprets payloads or chain values; it keeps them byte for byte, so an
    auditor can recompute the chain from what :meth:`read` returns.
    """

    def load_tail(self) -> tuple[int, bytes]:
        """``(last_seq, last_chain)`` of the highest stored record; ``(0, GENESIS)`` if empty."""
        ...

    def write_batch(self, rows: Iterable[StoredRow]) -> None:
        """Store every row in one transaction (group commit): all of them or none.

        Raises :class:`SeqConflict` when a sequence number is already stored. If consuming
        ``rows`` raises, that error propagates and nothing of the batch is stored.
        """
        ...

    def read(self, from_seq: int = 1) -> Iterator[StoredRow]:
        """Stored rows with ``seq >= from_seq``, in sequence order."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Store (or replace) a run-level fact, outside the event chain."""
        ...

    def meta(self) -> dict[str, str]:
        """Every run-level fact."""
        ...

    def write_snapshot(self, seq: int, chain: bytes, payload: bytes) -> None:
        """Store a snapshot of derived state taken when record ``seq`` (chain value
        ``chain``) was the last one durable; keeps the newest :data:`SNAPSHOTS_KEPT`."""
        ...

    def latest_snapshot(self, max_seq: int | None = None) -> StoredSnapshot | None:
        """The newest snapshot with ``seq <= max_seq`` (any when ``None``), or ``None``."""
        ...

    def truncate_after(self, seq: int) -> int:
        """Delete every row (and snapshot) after ``seq``; returns how many rows.

        For tests and recovery tools (discarding a torn tail), never for normal operation:
        the journal is append-only."""
        ...

    def close(self) -> None:
        """Release the connection. Stored rows stay stored."""
        ...


# -- SQLite -------------------------------------------------------------------------------
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    type TEXT NOT NULL,
    payload BLOB NOT NULL,
    chain BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY,
    chain BLOB NOT NULL,
    payload BLOB NOT NULL
);
"""


class SqliteStore:
    """Journal rows in an SQLite file (WAL) or in memory (``":memory:"``).

    ``synchronous="NORMAL"`` (default) is durable against a process crash and fast enough
    for simulation; ``"FULL"`` also survives a power loss, for live mode. All processes of
    a deployment share the file; the node is its only writer.
    """

    def __init__(
        self, path: str | os.PathLike[str] = ":memory:", *, synchronous: Synchronous = "NORMAL"
    ) -> None:
        if synchronous not in get_args(Synchronous):
            raise ValueError(
                f"synchronous must be one of {', '.join(get_args(Synchronous))}, "
                f"not {synchronous!r}"
            )
        self.path = os.fspath(path)
        self.synchronous: Synchronous = synchronous
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SQLITE_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, synchronous={self.synchronous!r})"

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for tests and recovery tools that need raw SQL."""
        return self._db

    def load_tail(self) -> tuple[int, bytes]:
        row = self._db.execute("SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def write_batch(self, rows: Iterable[StoredRow]) -> None:
        try:
            with self._db:  # one transaction: commit on success, roll back on any error
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as exc:
            raise SeqConflict(
                f"{self!r}: a sequence number of this batch is already stored ({exc}); "
                "nothing of the batch was written. Is another process writing this journal?"
            ) from exc

    def read(self, from_seq: int = 1) -> Iterator[StoredRow]:
        yield from self._db.execute(
            "SELECT seq, ts, type, payload, chain FROM events WHERE seq >= ? ORDER BY seq",
            (from_seq,),
        )

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def write_snapshot(self, seq: int, chain: bytes, payload: bytes) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (seq, chain, payload)
            )
            self._db.execute(
                "DELETE FROM snapshots WHERE seq NOT IN "
                "(SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)",
                (SNAPSHOTS_KEPT,),
            )

    def latest_snapshot(self, max_seq: int | None = None) -> StoredSnapshot | None:
        limit = (1 << 62) if max_seq is None else max_seq
        row = self._db.execute(
            "SELECT seq, chain, payload FROM snapshots WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
            (limit,),
        ).fetchone()
        return None if row is None else (row[0], bytes(row[1]), bytes(row[2]))

    def truncate_after(self, seq: int) -> int:
        with self._db:
            removed: int = self._db.execute("DELETE FROM events WHERE seq > ?", (seq,)).rowcount
            self._db.execute("DELETE FROM snapshots WHERE seq > ?", (seq,))
        return removed

    def close(self) -> None:
        self._db.close()


# -- in process ---------------------------------------------------------------------------
class StoreClosed(RuntimeError):
    """An operation on a closed in-process store."""


class MemoryStore:
    """Journal rows in a Python list: the in-process store for tests.

    It keeps the contract of the real stores (atomic batches, unique sequence numbers,
    rows read back in sequence order). ``rows`` and ``meta_values`` are public so a test
    can tamper with them directly; :meth:`reopen` gives a new store over the same data,
    the way reopening a database file would.
    """

    def __init__(
        self,
        rows: list[StoredRow] | None = None,
        meta_values: dict[str, str] | None = None,
        snapshots: list[StoredSnapshot] | None = None,
    ) -> None:
        self.rows: list[StoredRow] = [] if rows is None else rows
        self.meta_values: dict[str, str] = {} if meta_values is None else meta_values
        self.snapshots: list[StoredSnapshot] = [] if snapshots is None else snapshots
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self.rows)} rows>)"

    def reopen(self) -> MemoryStore:
        """A new, open store over the same rows and meta (even after :meth:`close`)."""
        return MemoryStore(self.rows, self.meta_values, self.snapshots)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"{self!r} is closed")

    def load_tail(self) -> tuple[int, bytes]:
        self._check_open()
        if not self.rows:
            return 0, GENESIS
        last = max(self.rows, key=_seq_of)
        return last[0], last[4]

    def write_batch(self, rows: Iterable[StoredRow]) -> None:
        self._check_open()
        batch = list(rows)  # if the iterable fails half-way, nothing has been stored yet
        if not batch:
            return
        seqs = [row[0] for row in batch]
        unique = set(seqs)
        highest = max((row[0] for row in self.rows[-1:]), default=0)
        clash = len(unique) != len(seqs)
        if not clash and min(unique) <= highest:  # not a plain append: check everything
            clash = not unique.isdisjoint(row[0] for row in self.rows)
        if clash:
            raise SeqConflict(
                f"{self!r}: a sequence number of this batch is already stored; "
                "nothing of the batch was written"
            )
        out_of_order = min(unique) <= highest or seqs != sorted(seqs)
        self.rows.extend(batch)
        if out_of_order:
            self.rows.sort(key=_seq_of)

    def read(self, from_seq: int = 1) -> Iterator[StoredRow]:
        self._check_open()
        for row in sorted(self.rows, key=_seq_of):
            if row[0] >= from_seq:
                yield row

    def set_meta(self, key: str, value: str) -> None:
        self._check_open()
        self.meta_values[key] = value

    def meta(self) -> dict[str, str]:
        self._check_open()
        return dict(self.meta_values)

    def write_snapshot(self, seq: int, chain: bytes, payload: bytes) -> None:
        self._check_open()
        kept = [snap for snap in self.snapshots if snap[0] != seq]
        kept.append((seq, chain, payload))
        kept.sort(key=_seq_of)
        self.snapshots[:] = kept[-SNAPSHOTS_KEPT:]

    def latest_snapshot(self, max_seq: int | None = None) -> StoredSnapshot | None:
        self._check_open()
        fitting = [snap for snap in self.snapshots if max_seq is None or snap[0] <= max_seq]
        return fitting[-1] if fitting else None

    def truncate_after(self, seq: int) -> int:
        self._check_open()
        self.snapshots[:] = [snap for snap in self.snapshots if snap[0] <= seq]
        kept = [row for row in self.rows if row[0] <= seq]
        removed = len(self.rows) - len(kept)
        self.rows[:] = kept
        return removed

    def close(self) -> None:
        self._closed = True


def _seq_of(row: StoredRow | StoredSnapshot) -> int:
    return row[0]


# -- choosing a store by URL --------------------------------------------------------------
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_store(url: str | os.PathLike[str]) -> JournalStore:
    """The store a journal URL names.

    - ``sqlite:///journal.sqlite`` (relative to the working directory),
      ``sqlite:////var/predator/journal.sqlite`` (absolute: four slashes),
      ``sqlite:///:memory:``; optional ``?synchronous=FULL`` (default NORMAL);
    - a plain file path (``runs/journal.sqlite``): SQLite;
    - ``postgresql://user@host:5432/db`` or ``postgres://...``; optional ``?journal=NAME``
      keeps this journal apart from others in the same database (see
      :class:`~predator.ledger.postgres_store.PostgresStore`);
    - ``memory://``: a fresh :class:`MemoryStore`.

    Anything else raises :class:`ValueError` naming the supported forms.
    """
    if not isinstance(url, str):
        return SqliteStore(url)
    match = _SCHEME.match(url)
    if match is None:
        return SqliteStore(url)
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        path, synchronous = _parse_sqlite_url(url)
        return SqliteStore(path, synchronous=synchronous)
    if scheme in ("postgresql", "postgres"):
        return _postgres_store(url)
    if scheme == "memory":
        if url.rstrip("/") != f"{match.group(1)}:":
            raise ValueError(f"a memory:// journal URL takes no host, path or options: {url!r}")
        return MemoryStore()
    raise ValueError(
        f"unsupported journal URL scheme {scheme!r} in {redact_url(url)!r}; "
        f"supported: {SUPPORTED_URLS}"
    )


def _parse_sqlite_url(url: str) -> tuple[str, Synchronous]:
    parts = urlsplit(url)
    if parts.netloc:
        raise ValueError(
            f"an sqlite URL has no host ({url!r}): use sqlite:///relative/path, "
            "sqlite:////absolute/path or sqlite:///:memory:"
        )
    # As in SQLAlchemy: the path is what follows "sqlite:///"; an empty one is in memory.
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path) or ":memory:"
    synchronous: Synchronous = "NORMAL"
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key != "synchronous":
            raise ValueError(f"unknown sqlite journal URL option {key!r} in {url!r}")
        level = value.upper()
        if level == "NORMAL":
            synchronous = "NORMAL"
        elif level == "FULL":
            synchronous = "FULL"
        else:
            raise ValueError(f"synchronous must be NORMAL or FULL, not {value!r} in {url!r}")
    return path, synchronous


def _postgres_store(url: str) -> PostgresStore:
    # Imported here: psycopg takes about half a second to import, and backtests never need it.
    from predator.ledger.postgres_store import PostgresStore

    return PostgresStore(url)
