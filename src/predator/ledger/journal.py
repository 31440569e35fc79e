"""The journal: an append-only, hash-chained log of every state-changing event.

Events are JSON-encoded (exact big integers, readable with any SQLite tool) and written
to SQLite (WAL) in batched transactions. Each record carries a checksum chained to the
previous one, so the final chain value is a digest of the whole run.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import msgspec

from predator.core.events import Event

__all__ = ["GENESIS", "Journal", "JournalClosed", "JournalRecord"]

GENESIS = bytes(16)
"""The chain value before the first record."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    type TEXT NOT NULL,
    payload BLOB NOT NULL,
    chain BLOB NOT NULL
);
"""


class JournalClosed(RuntimeError):
    """An append was attempted on a closed journal."""


class JournalRecord(msgspec.Struct, frozen=True):
    """One stored event: sequence number, time, type name, decoded payload, chain value."""

    seq: int
    ts: int
    type: str
    payload: dict[str, Any]
    chain: bytes


def chain_next(previous: bytes, payload: bytes) -> bytes:
    """The chain value after ``payload``: blake2b-128 of the previous value and the payload."""
    return hashlib.blake2b(previous + payload, digest_size=16).digest()


class Journal:
    """Append-only event journal on SQLite.

    ``path=None`` keeps it in memory (benchmarks, throwaway runs); the chain and digest
    are computed the same way either way.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, batch_size: int = 2048):
        self.path = None if path is None else os.fspath(path)
        self._db = sqlite3.connect(":memory:" if self.path is None else self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._encoder = msgspec.json.Encoder()
        self._batch_size = batch_size
        self._pending: list[tuple[int, int, str, bytes, bytes]] = []
        row = self._db.execute("SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq: int = row[0] if row else 0
        self._chain: bytes = row[1] if row else GENESIS
        self._closed = False

    # -- writing ----------------------------------------------------------------------
    def append(self, event: Event) -> int:
        """Append ``event``; returns its sequence number. Durable after the next flush."""
        if self._closed:
            raise JournalClosed("journal is closed")
        payload = self._encoder.encode(event)
        chain = hashlib.blake2b(self._chain + payload, digest_size=16).digest()
        self._chain = chain
        self._seq += 1
        self._pending.append((self._seq, event.ts, type(event).__name__, payload, chain))
        if len(self._pending) >= self._batch_size:
            self.flush()
        return self._seq

    def flush(self) -> None:
        """Commit every pending record in one transaction (group commit)."""
        if not self._pending:
            return
        with self._db:
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def set_meta(self, key: str, value: str) -> None:
        """Store a run-level fact (config, data digest) outside the event chain."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Flush and close; further appends raise :class:`JournalClosed`."""
        if self._closed:
            return
        self.flush()
        self._db.close()
        self._closed = True

    # -- reading ----------------------------------------------------------------------
    @property
    def digest(self) -> str:
        """Hex chain value of the last record: a digest of the whole journal so far."""
        return self._chain.hex()

    @property
    def last_seq(self) -> int:
        """Sequence number of the last appended record (0 when empty)."""
        return self._seq

    def records(self) -> Iterator[JournalRecord]:
        """Every durable record in sequence order (flushes first)."""
        self.flush()
        decode = msgspec.json.decode
        for seq, ts, type_name, payload, chain in self._db.execute(
            "SELECT seq, ts, type, payload, chain FROM events ORDER BY seq"
        ):
            yield JournalRecord(seq, ts, type_name, decode(payload), chain)

    def meta(self) -> dict[str, str]:
        """All run-level facts."""
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
