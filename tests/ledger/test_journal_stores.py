"""Specs for the journal stores (SQLite, in-process, PostgreSQL) and the chain verifier.

The behavioural specs run against every store: the PostgreSQL ones on the real server at
127.0.0.1:5432 (``PREDATOR_TEST_POSTGRES_URL`` overrides it). They are marked ``postgres``
and fail, never skip, when the server cannot be reached: `make test` checks it first.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from predator.core.events import Event
from predator.ledger import (
    ChainBreak,
    Journal,
    JournalCorrupted,
    JournalRecord,
    JournalStore,
    MemoryStore,
    PostgresStore,
    SeqConflict,
    SqliteStore,
    open_store,
    verify_chain,
)
from predator.ledger.journal import GENESIS, chain_next
from predator.ledger.postgres_store import JournalSchemaTooNew
from predator.ledger.stores import StoredRow
from predator.node import RunCompleted
from predator.testkit.builders import order_filled
from predator.venue import Side

POSTGRES_URL = os.environ.get(
    "PREDATOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


class CashDeposited(Event, frozen=True, kw_only=True):
    amount: int
    note: str = ""


def session() -> list[Event]:
    """Five fixed events of three types, one with money beyond 64 bits."""
    return [
        CashDeposited(ts=1, amount=1_000_000, note="initial"),
        order_filled(Side.BUY, 10, 10101, fee=101_010_000, ts=2, trade_id="T1"),
        order_filled(Side.SELL, 4, 11075, fee=44_300_000, ts=3, trade_id="T2"),
        CashDeposited(ts=4, amount=-500),
        RunCompleted(ts=5, final_equity=10**23 + 7, trades=1, fills=2, orders=2),
    ]


def reference_digest(events: list[Event]) -> str:
    """The digest of ``events`` in the default journal (in-memory SQLite)."""
    with Journal() as journal:
        for event in events:
            journal.append(event)
        return journal.digest


# -- the stores under test, and a tamperer with direct access to each ---------------------
class Backend:
    """One kind of store: opens stores over the same data and tampers with it directly."""

    name: str

    def __init__(self) -> None:
        self._opened: list[JournalStore] = []

    def open(self) -> JournalStore:
        store = self._new_store()
        self._opened.append(store)
        return store

    def _new_store(self) -> JournalStore:
        raise NotImplementedError

    def close_all(self) -> None:
        for store in self._opened:
            store.close()

    # Tampering, as someone with write access to the database would do it.
    def row(self, seq: int) -> StoredRow:
        raise NotImplementedError

    def edit(self, seq: int, *, payload: bytes | None = None, chain: bytes | None = None) -> None:
        raise NotImplementedError

    def delete(self, seq: int) -> None:
        raise NotImplementedError

    def duplicate(self, seq: int) -> None:
        """Insert a copy of ``seq`` right after it; the later records move up by one."""
        raise NotImplementedError

    def swap(self, first: int, second: int) -> None:
        """Exchange two records' contents; the sequence numbers stay in place."""
        raise NotImplementedError


class SqlBackend(Backend):
    """Tampers through its own connection with plain SQL, ``?`` placeholders."""

    table = "events"

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def row(self, seq: int) -> StoredRow:
        (found,) = self._execute(
            f"SELECT seq, ts, type, payload, chain FROM {self.table} WHERE seq = ?", (seq,)
        )
        return (found[0], found[1], found[2], bytes(found[3]), bytes(found[4]))

    def edit(self, seq: int, *, payload: bytes | None = None, chain: bytes | None = None) -> None:
        if payload is not None:
            self._execute(f"UPDATE {self.table} SET payload = ? WHERE seq = ?", (payload, seq))
        if chain is not None:
            self._execute(f"UPDATE {self.table} SET chain = ? WHERE seq = ?", (chain, seq))

    def delete(self, seq: int) -> None:
        self._execute(f"DELETE FROM {self.table} WHERE seq = ?", (seq,))

    def duplicate(self, seq: int) -> None:
        # Through negative numbers: the primary key is checked row by row.
        self._execute(f"UPDATE {self.table} SET seq = -seq - 1 WHERE seq > ?", (seq,))
        self._execute(f"UPDATE {self.table} SET seq = -seq WHERE seq < 0")
        self._execute(
            f"INSERT INTO {self.table} (seq, ts, type, payload, chain)"
            f" SELECT seq + 1, ts, type, payload, chain FROM {self.table} WHERE seq = ?",
            (seq,),
        )

    def swap(self, first: int, second: int) -> None:
        self._execute(
            f"UPDATE {self.table} SET seq = CASE WHEN seq = ? THEN -? ELSE -? END"
            " WHERE seq IN (?, ?)",
            (first, second, first, first, second),
        )
        self._execute(f"UPDATE {self.table} SET seq = -seq WHERE seq < 0")


class SqliteBackend(SqlBackend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _new_store(self) -> JournalStore:
        return SqliteStore(self.path)

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        tamperer = sqlite3.connect(self.path)
        try:
            with tamperer:
                return tamperer.execute(statement, params).fetchall()
        finally:
            tamperer.close()

    def cleanup(self) -> None:
        self.close_all()


class PostgresBackend(SqlBackend):
    name = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.journal = f"test_{uuid.uuid4().hex[:16]}"  # each test its own journal
        self.url = f"{url}?journal={self.journal}"
        self.table = f"{self.journal}.events"
        self._admin = psycopg.connect(url, autocommit=True)

    def _new_store(self) -> JournalStore:
        return PostgresStore(self.url)

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self._admin.execute(statement.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []

    def cleanup(self) -> None:
        self.close_all()
        self._admin.execute(f"DROP SCHEMA IF EXISTS {self.journal} CASCADE")
        self._admin.close()


class MemoryBackend(Backend):
    """Tampers with the in-process store's rows directly."""

    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.data = MemoryStore()

    def _new_store(self) -> JournalStore:
        return self.data.reopen()

    def _at(self, seq: int) -> int:
        (index,) = [i for i, row in enumerate(self.data.rows) if row[0] == seq]
        return index

    def row(self, seq: int) -> StoredRow:
        return self.data.rows[self._at(seq)]

    def edit(self, seq: int, *, payload: bytes | None = None, chain: bytes | None = None) -> None:
        index = self._at(seq)
        old = self.data.rows[index]
        self.data.rows[index] = (
            old[0],
            old[1],
            old[2],
            old[3] if payload is None else payload,
            old[4] if chain is None else chain,
        )

    def delete(self, seq: int) -> None:
        del self.data.rows[self._at(seq)]

    def duplicate(self, seq: int) -> None:
        index = self._at(seq)
        rows = self.data.rows
        rows[index + 1 :] = [(row[0] + 1, *row[1:]) for row in rows[index + 1 :]]
        rows.insert(index + 1, (seq + 1, *rows[index][1:]))

    def swap(self, first: int, second: int) -> None:
        a, b = self._at(first), self._at(second)
        rows = self.data.rows
        rows[a], rows[b] = (first, *rows[b][1:]), (second, *rows[a][1:])

    def cleanup(self) -> None:
        self.close_all()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test database; its absence is a failure, never a skip."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {POSTGRES_URL} ({exc}). The postgres-marked tests "
            "need it: start the server or set PREDATOR_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    return POSTGRES_URL


@pytest.fixture(
    params=["sqlite", "memory", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made: SqliteBackend | MemoryBackend | PostgresBackend
    if request.param == "sqlite":
        made = SqliteBackend(tmp_path / "journal.sqlite")
    elif request.param == "memory":
        made = MemoryBackend()
    else:
        made = PostgresBackend(request.getfixturevalue("postgres_url"))
    try:
        yield made
    finally:
        made.cleanup()


def written(backend: Backend, events: list[Event] | None = None) -> str:
    """Journal ``events`` (default: the session) into ``backend``; returns the digest."""
    with Journal(store=backend.open(), batch_size=2) as journal:
        for event in session() if events is None else events:
            journal.append(event)
        return journal.digest


def breaks_in(backend: Backend) -> list[ChainBreak]:
    return verify_chain(backend.open().read())


# -- every store behaves the same ---------------------------------------------------------
def test_every_store_meets_the_store_interface(backend: Backend) -> None:
    assert isinstance(backend.open(), JournalStore)


def test_an_empty_store_has_the_genesis_tail(backend: Backend) -> None:
    store = backend.open()
    assert store.load_tail() == (0, GENESIS)
    assert list(store.read()) == []
    assert Journal(store=store).digest == GENESIS.hex()


def test_appended_events_round_trip_through_the_store(backend: Backend) -> None:
    events = session()
    store = backend.open()
    journal = Journal(store=store, batch_size=3)

    seqs = [journal.append(event) for event in events]
    journal.flush()

    rows = list(store.read())
    assert seqs == [1, 2, 3, 4, 5] == [row[0] for row in rows]
    assert [row[1] for row in rows] == [1, 2, 3, 4, 5]
    assert [row[2] for row in rows] == [
        "CashDeposited",
        "OrderFilled",
        "OrderFilled",
        "CashDeposited",
        "RunCompleted",
    ]
    assert [row[3] for row in rows] == [msgspec.json.encode(event) for event in events]
    records = list(journal.records())
    for record, row, event in zip(records, rows, session(), strict=True):
        assert (record.seq, record.ts, record.type, record.raw, record.chain) == row
        assert msgspec.convert(record.payload, type(event)) == event
    assert [row[0] for row in store.read(from_seq=4)] == [4, 5]
    assert [record.seq for record in journal.records(from_seq=5)] == [5]


def test_snapshots_are_kept_newest_first_within_what_the_journal_covers(
    backend: Backend,
) -> None:
    store = backend.open()
    journal = Journal(store=store, batch_size=100)
    events = session()
    assert store.latest_snapshot() is None
    seqs = []
    for event in events[:4]:
        journal.append(event)
        seqs.append(journal.write_snapshot(f"state after {journal.last_seq}".encode()))
    assert seqs == [1, 2, 3, 4]  # each snapshot flushed the records it follows first
    assert [row[0] for row in store.read()] == [1, 2, 3, 4]
    seq, chain, payload = store.latest_snapshot() or (0, b"", b"")
    assert (seq, payload) == (4, b"state after 4")
    assert chain == store.load_tail()[1]  # names the chain value of the record it follows
    # Only the newest two are kept; one bounded by what a recovery found durable:
    assert store.latest_snapshot(3) == (3, next(iter(store.read(3)))[4], b"state after 3")
    assert store.latest_snapshot(2) is None
    # Discarding records discards the snapshots that follow them.
    store.truncate_after(3)
    assert store.latest_snapshot() is not None
    assert (store.latest_snapshot() or (0,))[0] == 3
    journal.close()


def test_the_digest_is_the_same_whatever_the_store(backend: Backend) -> None:
    digest = written(backend)

    assert digest == reference_digest(session())
    assert backend.open().load_tail() == (5, bytes.fromhex(digest))
    assert breaks_in(backend) == []


def test_a_reopened_journal_continues_the_sequence_and_the_chain(backend: Backend) -> None:
    events = session()
    with Journal(store=backend.open()) as first:
        for event in events[:2]:
            first.append(event)
        first.set_meta("format", "predator-journal/1")
        digest_after_two = first.digest

    with Journal(store=backend.open()) as reopened:
        assert (reopened.last_seq, reopened.digest) == (2, digest_after_two)
        assert [reopened.append(event) for event in events[2:]] == [3, 4, 5]
        assert reopened.digest == reference_digest(events)
        assert [record.seq for record in reopened.records()] == [1, 2, 3, 4, 5]
        assert reopened.meta() == {"format": "predator-journal/1"}
        assert reopened.verify() == []


def test_meta_is_replaced_not_duplicated_and_stays_outside_the_chain(backend: Backend) -> None:
    with Journal(store=backend.open()) as journal:
        journal.append(session()[0])
        digest = journal.digest
        journal.set_meta("format", "predator-journal/1")
        journal.set_meta("format", "predator-journal/2")
        journal.set_meta("data_sha256", "ab" * 32)
        assert journal.digest == digest

    assert backend.open().meta() == {"format": "predator-journal/2", "data_sha256": "ab" * 32}


def test_money_beyond_64_bits_survives_every_store(backend: Backend) -> None:
    huge = RunCompleted(ts=1, final_equity=10**23 + 7, trades=0, fills=0, orders=0)
    debt = RunCompleted(ts=2, final_equity=-(10**23) - 9, trades=0, fills=0, orders=0)
    written(backend, [huge, debt])

    records = list(Journal(store=backend.open()).records())
    assert [r.payload["final_equity"] for r in records] == [10**23 + 7, -(10**23) - 9]
    assert b'"final_equity":100000000000000000000007' in records[0].raw


# -- a batch is all or nothing ------------------------------------------------------------
class StoreDown(RuntimeError):
    """The fault injected in the middle of a batch."""


def failing_half_way(rows: list[StoredRow]) -> Iterator[StoredRow]:
    """Yields the first half of ``rows``, then fails: a crash in the middle of a commit."""
    yield from rows[: len(rows) // 2]
    raise StoreDown("connection lost in the middle of the batch")


def honest_rows(events: list[Event]) -> list[StoredRow]:
    """The rows a journal stores for ``events``."""
    journal = Journal()
    for event in events:
        journal.append(event)
    journal.flush()
    return list(journal.store.read())


def test_a_batch_that_fails_half_way_leaves_nothing_of_it_behind(backend: Backend) -> None:
    rows = honest_rows(session())
    store = backend.open()
    store.write_batch(rows[:2])
    tail = store.load_tail()

    with pytest.raises(StoreDown):
        store.write_batch(failing_half_way(rows[2:]))  # row 3 sent, then the failure

    assert tail == (2, rows[1][4])
    for reader in (store, backend.open()):
        assert reader.load_tail() == tail
        assert [row[0] for row in reader.read()] == [1, 2]
    store.write_batch(rows[2:])  # the same batch, retried, goes in whole
    assert list(backend.open().read()) == rows


def test_a_batch_holding_a_stored_sequence_number_is_refused_whole(backend: Backend) -> None:
    written(backend, session()[:3])
    store = backend.open()
    tail = store.load_tail()
    fresh = (4, 4, "CashDeposited", b'{"type":"CashDeposited","ts":4,"amount":1}', bytes(16))
    stale = (2, 2, "CashDeposited", b'{"type":"CashDeposited","ts":2,"amount":1}', bytes(16))

    with pytest.raises(SeqConflict, match="already stored"):
        store.write_batch([fresh, stale])

    assert store.load_tail() == tail
    assert [row[0] for row in store.read()] == [1, 2, 3]


def test_a_journal_whose_flush_fails_keeps_the_batch_pending_and_retries_it(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = session()
    store = backend.open()
    journal = Journal(store=store, batch_size=100)
    for event in events[:2]:
        journal.append(event)
    journal.flush()
    for event in events[2:]:
        journal.append(event)
    real_write = store.write_batch
    monkeypatch.setattr(store, "write_batch", lambda rows: real_write(failing_half_way(rows)))

    with pytest.raises(StoreDown):
        journal.flush()
    assert backend.open().load_tail()[0] == 2  # nothing of the failed batch is durable
    assert journal.last_seq == 5

    monkeypatch.setattr(store, "write_batch", real_write)  # the store is back
    journal.flush()
    assert [row[0] for row in backend.open().read()] == [1, 2, 3, 4, 5]
    assert journal.digest == reference_digest(events)
    assert journal.verify() == []


def test_a_second_writer_cannot_overwrite_or_interleave_records(backend: Backend) -> None:
    events = session()
    node = Journal(store=backend.open())
    intruder = Journal(store=backend.open())  # opened at the same tail
    node.append(events[0])
    node.flush()
    intruder.append(events[1])

    with pytest.raises(SeqConflict):
        intruder.flush()
    assert [row[3] for row in backend.open().read()] == [msgspec.json.encode(events[0])]


# -- tamper evidence: the chain breaks at a named sequence number -------------------------
def test_an_untouched_journal_has_an_intact_chain(backend: Backend) -> None:
    written(backend)
    assert breaks_in(backend) == []
    assert Journal(store=backend.open()).verify() == []


def test_an_edited_payload_breaks_the_chain_at_its_seq(backend: Backend) -> None:
    written(backend)
    raw = backend.row(3)[3]
    edited = raw.replace(b'"price":11075', b'"price":11076')  # one cent
    assert edited != raw
    backend.edit(3, payload=edited)

    (found,) = breaks_in(backend)
    assert found.seq == 3
    assert found.problem.startswith("payload edited")


def test_an_edit_with_a_recomputed_chain_value_breaks_the_chain_at_the_next_seq(
    backend: Backend,
) -> None:
    written(backend)
    edited = backend.row(3)[3].replace(b'"price":11075', b'"price":11076')
    backend.edit(3, payload=edited, chain=chain_next(backend.row(2)[4], edited))

    (found,) = breaks_in(backend)
    assert found.seq == 4
    assert "rewritten with a recomputed chain value" in found.problem


def test_a_removed_record_is_named_as_missing(backend: Backend) -> None:
    written(backend)
    backend.delete(3)

    assert breaks_in(backend) == [ChainBreak(3, "missing: seq 3 not stored")]


def test_a_duplicated_record_is_named_with_the_seq_it_copies(backend: Backend) -> None:
    written(backend)
    backend.duplicate(2)  # a fill applied twice

    assert breaks_in(backend) == [ChainBreak(3, "duplicate: a copy of seq 2")]


def test_a_reordered_pair_is_named_at_the_first_displaced_seq(backend: Backend) -> None:
    written(backend)
    backend.swap(2, 3)

    assert breaks_in(backend) == [
        ChainBreak(2, "reordered: the record stored at seq 3 belongs at seq 2")
    ]


def test_swapped_payloads_under_their_chain_values_are_named_once(backend: Backend) -> None:
    written(backend)
    second, third = backend.row(2)[3], backend.row(3)[3]
    backend.edit(2, payload=third)
    backend.edit(3, payload=second)

    assert breaks_in(backend) == [
        ChainBreak(2, "reordered: the payload stored at seq 3 belongs at seq 2")
    ]


def test_an_altered_chain_value_is_named(backend: Backend) -> None:
    written(backend)
    backend.edit(3, chain=bytes(16))

    (found,) = breaks_in(backend)
    assert found.seq == 3
    assert found.problem.startswith("chain value altered")


def test_a_torn_last_record_is_detected_never_applied_and_can_be_discarded(
    backend: Backend,
) -> None:
    events = session()
    written(backend)
    raw = backend.row(5)[3]
    backend.edit(5, payload=raw[: len(raw) // 2])  # a crash in the middle of the write

    (found,) = breaks_in(backend)
    assert found.seq == 5
    assert found.problem.startswith("torn: the last record's payload")
    assert "truncate_after(4)" in found.problem
    with pytest.raises(JournalCorrupted) as caught:
        list(Journal(store=backend.open()).records())
    assert caught.value.seq == 5

    store = backend.open()
    assert store.truncate_after(found.seq - 1) == 1
    with Journal(store=store) as recovered:
        assert (recovered.last_seq, recovered.digest) == (4, reference_digest(events[:4]))
        assert recovered.verify() == []
        assert recovered.append(events[4]) == 5
        assert recovered.digest == reference_digest(events)


def test_a_torn_record_with_records_after_it_is_corruption(backend: Backend) -> None:
    written(backend)
    raw = backend.row(2)[3]
    backend.edit(2, payload=raw[:7])

    (found,) = breaks_in(backend)
    assert found.seq == 2
    assert "corruption, not a partial write" in found.problem


# -- verify_chain on records as an auditor receives them ----------------------------------
def honest_records(events: list[Event]) -> list[JournalRecord]:
    journal = Journal()
    for event in events:
        journal.append(event)
    return list(journal.records())


def test_verify_chain_accepts_records_and_store_rows_alike() -> None:
    records = honest_records(session())
    rows = [(r.seq, r.ts, r.type, r.raw, r.chain) for r in records]

    assert verify_chain(records) == verify_chain(rows) == []
    assert verify_chain([]) == []


def test_a_sequence_number_listed_twice_is_a_duplicate() -> None:
    records = honest_records(session())

    found = verify_chain([*records[:3], records[2], *records[3:]])

    assert found == [ChainBreak(3, "duplicate: seq 3 appears twice (an identical copy)")]


def test_records_listed_out_of_order_are_named_at_the_late_seq() -> None:
    r = honest_records(session())

    found = verify_chain([r[0], r[2], r[1], r[3], r[4]])

    assert found == [ChainBreak(2, "reordered: seq 2 is stored after seq 3")]


def test_a_gap_of_several_records_is_named_at_its_first_missing_seq() -> None:
    r = honest_records(session())

    assert verify_chain([r[0], r[4]]) == [ChainBreak(2, "missing: seq 2..4 not stored")]
    assert verify_chain(r[1:]) == [ChainBreak(1, "missing: seq 1 not stored")]


def test_a_tail_verifies_from_a_trusted_anchor() -> None:
    r = honest_records(session())

    assert verify_chain(r[2:], after_seq=2, after_chain=r[1].chain) == []
    (found,) = verify_chain(r[2:], after_seq=2, after_chain=r[0].chain)
    assert found.seq == 3


def test_every_break_is_reported_in_sequence_order() -> None:
    r = honest_records(session())
    edited = msgspec.structs.replace(r[3], raw=r[3].raw.replace(b"-500", b"-501"))

    found = verify_chain([r[0], r[2], edited, r[4]])

    assert [b.seq for b in found] == [2, 4]
    assert found[0].problem == "missing: seq 2 not stored"
    assert found[1].problem.startswith("payload edited")


def test_records_swapped_far_apart_are_named_once() -> None:
    r = honest_records(session())
    swapped = [r[0], r[4], r[2], r[3], r[1]]
    rows = [(slot, *(x.ts, x.type, x.raw, x.chain)) for slot, x in enumerate(swapped, 1)]

    assert verify_chain(rows) == [
        ChainBreak(2, "reordered: the record stored at seq 5 belongs at seq 2")
    ]


def test_a_cut_off_tail_is_found_only_against_a_trusted_tail() -> None:
    r = honest_records(session())
    trusted = (r[-1].seq, r[-1].chain)  # e.g. the digest a run reported when it ended

    assert verify_chain(r[:3]) == []  # a chain alone cannot know what came after it
    assert verify_chain(r[:3], expected_tail=trusted) == [
        ChainBreak(4, "missing: seq 4..5 not stored (the journal is cut off)")
    ]
    assert verify_chain(r, expected_tail=trusted) == []
    assert verify_chain(r, expected_tail=(5, bytes(16))) == [
        ChainBreak(5, "chain value differs from the trusted one for this seq")
    ]


# -- choosing a store by URL --------------------------------------------------------------
def test_a_plain_path_opens_an_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    store = open_store(str(path))
    assert isinstance(store, SqliteStore)
    assert store.path == str(path)
    store.close()
    assert path.exists()


def test_sqlite_urls_follow_the_sqlalchemy_convention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///runs.sqlite")
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.sqlite'}")  # four slashes in all
    assert isinstance(relative, SqliteStore) and isinstance(absolute, SqliteStore)
    assert (relative.path, absolute.path) == ("runs.sqlite", str(tmp_path / "abs.sqlite"))
    relative.close()
    absolute.close()
    assert (tmp_path / "runs.sqlite").exists() and (tmp_path / "abs.sqlite").exists()

    for url in ("sqlite:///:memory:", "sqlite://"):
        store = open_store(url)
        assert isinstance(store, SqliteStore) and store.path == ":memory:"
        store.close()


def test_sqlite_synchronous_is_normal_by_default_and_full_on_request(tmp_path: Path) -> None:
    default = open_store(tmp_path / "a.sqlite")
    full = open_store(f"sqlite:///{tmp_path / 'b.sqlite'}?synchronous=FULL")
    assert isinstance(default, SqliteStore) and isinstance(full, SqliteStore)
    assert default.connection.execute("PRAGMA synchronous").fetchone() == (1,)
    assert full.connection.execute("PRAGMA synchronous").fetchone() == (2,)
    assert full.connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    default.close()
    full.close()

    with pytest.raises(ValueError, match="NORMAL or FULL"):
        open_store("sqlite:///x.sqlite?synchronous=OFF")
    with pytest.raises(ValueError, match="unknown sqlite journal URL option 'mode'"):
        open_store("sqlite:///x.sqlite?mode=ro")
    with pytest.raises(ValueError, match="NORMAL, FULL"):
        SqliteStore(":memory:", synchronous="OFF")


def test_memory_urls_open_an_in_process_store() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_an_unknown_scheme_names_the_supported_ones_and_hides_passwords() -> None:
    with pytest.raises(ValueError) as caught:
        open_store("mysql://admin:hunter2@db.internal/predator")

    message = str(caught.value)
    assert "unsupported journal URL scheme 'mysql'" in message
    for supported in ("sqlite:///", "postgresql://", "postgres://", "memory://", "file path"):
        assert supported in message
    assert "hunter2" not in message and "admin:***@db.internal" in message


def test_journal_takes_one_of_path_url_or_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one of path, url= or store="):
        Journal(tmp_path / "a.sqlite", store=MemoryStore())
    with Journal.open(f"sqlite:///{tmp_path / 'b.sqlite'}") as journal:
        assert journal.path == str(tmp_path / "b.sqlite")
    with Journal(url="memory://") as journal:
        assert journal.path is None and isinstance(journal.store, MemoryStore)


def test_a_journal_record_keeps_its_positional_fields_and_raw_defaults_to_empty() -> None:
    record = JournalRecord(1, 2, "CashDeposited", {"amount": 1}, b"chain")
    assert (record.seq, record.ts, record.type, record.chain, record.raw) == (
        1,
        2,
        "CashDeposited",
        b"chain",
        b"",
    )


# -- PostgreSQL specifics ------------------------------------------------------------------
@pytest.fixture
def pg_journal(postgres_url: str) -> Iterator[str]:
    """A fresh journal URL on the test server; the journal is dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield f"{postgres_url}?journal={name}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.mark.postgres
def test_postgres_urls_in_both_spellings_open_a_postgres_store(pg_journal: str) -> None:
    for url in (pg_journal, pg_journal.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        assert store.journal == pg_journal.rpartition("=")[2]
        store.close()


@pytest.mark.postgres
def test_migrations_are_applied_once_and_recorded(pg_journal: str) -> None:
    first = PostgresStore(pg_journal)
    second = PostgresStore(pg_journal)  # opening again applies nothing twice

    versions = first.connection.execute(
        f"SELECT version FROM {first.journal}.schema_migrations ORDER BY version"
    ).fetchall()
    assert versions == [(1,), (2,), (3,)]  # 3: the snapshots table
    assert first.schema_version == second.schema_version == 3
    first.close()
    second.close()


@pytest.mark.postgres
def test_the_events_json_view_shows_exact_payloads_to_sql_readers(pg_journal: str) -> None:
    store = PostgresStore(pg_journal)
    with Journal(store=store) as journal:
        journal.append(RunCompleted(ts=1, final_equity=10**23 + 7, trades=0, fills=0, orders=0))
    reader = PostgresStore(pg_journal)
    row = reader.connection.execute(
        f"SELECT payload->>'final_equity' FROM {reader.journal}.events_json"
    ).fetchone()
    assert row == ("100000000000000000000007",)
    reader.close()


@pytest.mark.postgres
def test_a_journal_migrated_by_a_newer_predator_is_refused(pg_journal: str) -> None:
    store = PostgresStore(pg_journal)
    store.connection.execute(
        f"INSERT INTO {store.journal}.schema_migrations (version, description)"
        " VALUES (999, 'from the future')"
    )
    store.close()

    with pytest.raises(JournalSchemaTooNew, match="schema version 999"):
        PostgresStore(pg_journal)


@pytest.mark.postgres
def test_journals_sharing_a_database_are_kept_apart(postgres_url: str) -> None:
    names = [f"test_{uuid.uuid4().hex[:16]}" for _ in range(2)]
    stores = [PostgresStore(postgres_url, journal=name) for name in names]
    try:
        events = session()
        with Journal(store=stores[0]) as first, Journal(store=stores[1]) as second:
            for event in events:
                first.append(event)
            second.append(events[0])
        readers = [PostgresStore(postgres_url, journal=name) for name in names]
        assert [len(list(reader.read())) for reader in readers] == [5, 1]
        assert readers[0].load_tail() == (5, bytes.fromhex(reference_digest(events)))
        for reader in readers:
            reader.drop()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            for name in names:
                admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def test_a_journal_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="not a lower-case identifier"):
        PostgresStore("postgresql://127.0.0.1:1/none?journal=Robert'); DROP TABLE x;--")
    with pytest.raises(ValueError, match="two journal names"):
        PostgresStore("postgresql://127.0.0.1:1/none?journal=a", journal="b")
