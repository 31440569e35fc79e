"""PostgreSQL journal store (psycopg 3): the store for multi-process, multi-machine runs.

Same rows as the SQLite store, one PostgreSQL schema per journal so several journals
(instances, tests) share one database; the schema is created and migrated on open.
Batches go in with binary COPY inside one transaction: group commit, all or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, LiteralString
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from predator.ledger.stores import (
    GENESIS,
    SNAPSHOTS_KEPT,
    SeqConflict,
    StoredRow,
    StoredSnapshot,
    redact_url,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg.rows import TupleRow

__all__ = ["DEFAULT_JOURNAL", "MIGRATIONS", "JournalSchemaTooNew", "PostgresStore"]

DEFAULT_JOURNAL = "predator"
"""Schema of a journal whose URL names none (``?journal=NAME`` names one)."""

_JOURNAL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_READ_PAGE = 5000
"""Rows fetched per query when reading: keyset pages, so no transaction stays open."""

MIGRATIONS: tuple[tuple[int, str, tuple[LiteralString, ...]], ...] = (
    (
        1,
        "events and meta tables",
        (
            "CREATE TABLE IF NOT EXISTS {schema}.events ("
            " seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL, type TEXT NOT NULL,"
            " payload BYTEA NOT NULL, chain BYTEA NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {schema}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    (
        2,
        "events_json view: payloads as jsonb for SQL readers",
        (
            "CREATE OR REPLACE VIEW {schema}.events_json AS"
            " SELECT seq, ts, type, convert_from(payload, 'UTF8')::jsonb AS payload, chain"
            " FROM {schema}.events",
        ),
    ),
    (
        3,
        "snapshots of derived state",
        (
            "CREATE TABLE IF NOT EXISTS {schema}.snapshots ("
            " seq BIGINT PRIMARY KEY, chain BYTEA NOT NULL, payload BYTEA NOT NULL)",
        ),
    ),
)
"""``(version, description, statements)``, applied in order on open, each exactly once.

Append new versions at the end; never edit one that has shipped. ``{schema}`` is the
journal's schema. Every statement is idempotent as well, so a half-known state heals.
"""


class JournalSchemaTooNew(RuntimeError):
    """The journal was migrated by a newer Predator than this one: refuse to touch it."""


class PostgresStore:
    """Journal rows in PostgreSQL, in the schema named by ``?journal=NAME``.

    ``url`` is a libpq URL (``postgresql://user@host:5432/db``); the ``journal`` option (or
    the ``journal`` argument) picks the schema, default :data:`DEFAULT_JOURNAL`. Names are
    lower-case identifiers (``[a-z_][a-z0-9_]*``, at most 63 characters). Tables:
    ``events(seq, ts, type, payload BYTEA, chain BYTEA)``, ``meta(key, value)``,
    ``schema_migrations(version, description, applied_at)`` and the ``events_json`` view.

    Example::

        store = PostgresStore("postgresql://postgres@127.0.0.1:5432/test?journal=run_42")
        with Journal(store=store) as journal:
            journal.append(event)
    """

    def __init__(self, url: str, *, journal: str | None = None, connect_timeout: int = 10) -> None:
        import psycopg
        from psycopg import sql

        conninfo, url_journal = _split_journal_option(url)
        if journal is not None and url_journal is not None and journal != url_journal:
            raise ValueError(
                f"two journal names: {journal!r} (argument) and {url_journal!r} (URL option)"
            )
        name = journal or url_journal or DEFAULT_JOURNAL
        if not _JOURNAL_NAME.match(name):
            raise ValueError(
                f"journal name {name!r} is not a lower-case identifier "
                "([a-z_][a-z0-9_]*, at most 63 characters)"
            )
        self.journal = name
        self.url = redact_url(url)
        self._conn: psycopg.Connection[TupleRow] = psycopg.connect(
            conninfo, autocommit=True, connect_timeout=connect_timeout
        )
        schema = sql.Identifier(name)

        def statement(text: LiteralString) -> sql.Composed:
            return sql.SQL(text).format(schema=schema)

        self._statement = statement
        self._insert = statement(
            "COPY {schema}.events (seq, ts, type, payload, chain) FROM STDIN (FORMAT BINARY)"
        )
        self._tail = statement("SELECT seq, chain FROM {schema}.events ORDER BY seq DESC LIMIT 1")
        self._page = statement(
            "SELECT seq, ts, type, payload, chain FROM {schema}.events"
            " WHERE seq >= %s ORDER BY seq LIMIT %s"
        )
        self._set_meta = statement(
            "INSERT INTO {schema}.meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        self._meta = statement("SELECT key, value FROM {schema}.meta")
        self._truncate = statement("DELETE FROM {schema}.events WHERE seq > %s")
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, journal={self.journal!r})"

    @property
    def connection(self) -> psycopg.Connection[TupleRow]:
        """The underlying connection (autocommit), for tests and recovery tools."""
        return self._conn

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._conn.transaction():
            # Openers of the same journal take turns, so concurrent first opens do not race.
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"predator-journal:{self.journal}",)
            )
            self._conn.execute(self._statement("CREATE SCHEMA IF NOT EXISTS {schema}"))
            self._conn.execute(
                self._statement(
                    "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                    " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
            )
            applied: set[int] = {
                row[0]
                for row in self._conn.execute(
                    self._statement("SELECT version FROM {schema}.schema_migrations")
                )
            }
            known = MIGRATIONS[-1][0]
            if applied and max(applied) > known:
                raise JournalSchemaTooNew(
                    f"journal {self.journal!r} at {self.url} has schema version {max(applied)}; "
                    f"this Predator knows up to {known}: upgrade Predator to open it"
                )
            for version, description, statements in MIGRATIONS:
                if version in applied:
                    continue
                for text in statements:
                    self._conn.execute(self._statement(text))
                self._conn.execute(
                    self._statement(
                        "INSERT INTO {schema}.schema_migrations (version, description)"
                        " VALUES (%s, %s)"
                    ),
                    (version, description),
                )

    @property
    def schema_version(self) -> int:
        """Highest migration applied to this journal."""
        row = self._conn.execute(
            self._statement("SELECT max(version) FROM {schema}.schema_migrations")
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def drop(self) -> None:
        """Delete this journal (its whole schema) and close. For tests and throwaway runs."""
        self._conn.execute(self._statement("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        self.close()

    # -- the store interface --------------------------------------------------------------
    def load_tail(self) -> tuple[int, bytes]:
        row = self._conn.execute(self._tail, binary=True).fetchone()
        if row is None:
            return 0, GENESIS
        return int(row[0]), bytes(row[1])

    def write_batch(self, rows: Iterable[StoredRow]) -> None:
        from psycopg import errors

        try:
            with (
                self._conn.transaction(),
                self._conn.cursor() as cursor,
                cursor.copy(self._insert) as copy,
            ):
                copy.set_types(["int8", "int8", "text", "bytea", "bytea"])
                for row in rows:
                    copy.write_row(row)
        except errors.UniqueViolation as exc:
            raise SeqConflict(
                f"{self!r}: a sequence number of this batch is already stored "
                f"({exc.diag.message_detail}); nothing of the batch was written. "
                "Is another process writing this journal?"
            ) from exc

    def read(self, from_seq: int = 1) -> Iterator[StoredRow]:
        next_seq = from_seq
        while True:
            with self._conn.cursor(binary=True) as cursor:
                page: list[StoredRow] = cursor.execute(
                    self._page, (next_seq, _READ_PAGE)
                ).fetchall()
            yield from page
            if len(page) < _READ_PAGE:
                return
            next_seq = page[-1][0] + 1

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(self._set_meta, (key, value))

    def meta(self) -> dict[str, str]:
        return {key: value for key, value in self._conn.execute(self._meta)}

    def write_snapshot(self, seq: int, chain: bytes, payload: bytes) -> None:
        with self._conn.transaction():
            self._conn.execute(
                self._statement(
                    "INSERT INTO {schema}.snapshots VALUES (%s, %s, %s)"
                    " ON CONFLICT (seq) DO UPDATE SET chain = EXCLUDED.chain,"
                    " payload = EXCLUDED.payload"
                ),
                (seq, chain, payload),
            )
            self._conn.execute(
                self._statement(
                    "DELETE FROM {schema}.snapshots WHERE seq NOT IN"
                    " (SELECT seq FROM {schema}.snapshots ORDER BY seq DESC LIMIT %s)"
                ),
                (SNAPSHOTS_KEPT,),
            )

    def latest_snapshot(self, max_seq: int | None = None) -> StoredSnapshot | None:
        limit = (1 << 62) if max_seq is None else max_seq
        row = self._conn.execute(
            self._statement(
                "SELECT seq, chain, payload FROM {schema}.snapshots WHERE seq <= %s"
                " ORDER BY seq DESC LIMIT 1"
            ),
            (limit,),
            binary=True,
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

    def truncate_after(self, seq: int) -> int:
        with self._conn.transaction():
            self._conn.execute(
                self._statement("DELETE FROM {schema}.snapshots WHERE seq > %s"), (seq,)
            )
            removed: int = self._conn.execute(self._truncate, (seq,)).rowcount
        return removed

    def close(self) -> None:
        self._conn.close()


def _split_journal_option(url: str) -> tuple[str, str | None]:
    """``url`` without its ``journal`` option (libpq would reject it), and that option."""
    parts = urlsplit(url)
    options = parse_qsl(parts.query, keep_blank_values=True)
    names = [value for key, value in options if key == "journal"]
    if len(names) > 1:
        raise ValueError(f"more than one journal option in {redact_url(url)!r}")
    # quote, not quote_plus: libpq reads "+" as a plus sign, not as a space
    rest = urlencode([(k, v) for k, v in options if k != "journal"], quote_via=quote)
    return urlunsplit(parts._replace(query=rest)), (names[0] if names else None)
