"""The journal: an append-only, hash-chained log of every state-changing event.

Events are JSON-encoded (exact big integers, readable with any SQL tool) and kept by a
:class:`~predator.ledger.stores.JournalStore` (SQLite by default, PostgreSQL, in-process)
in batched transactions. Each record carries a checksum chained to the previous one, so the
final chain value is a digest of the whole run and :func:`verify_chain` finds any tampering.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from predator.core.events import Event
from predator.ledger.stores import (
    GENESIS,
    JournalStore,
    SeqConflict,
    SqliteStore,
    StoredRow,
    open_store,
)

__all__ = [
    "GENESIS",
    "ChainBreak",
    "Journal",
    "JournalClosed",
    "JournalCorrupted",
    "JournalRecord",
    "chain_next",
    "verify_chain",
]


class JournalClosed(RuntimeError):
    """An append was attempted on a closed journal."""


class JournalCorrupted(RuntimeError):
    """A stored record cannot be read back (torn or corrupted payload).

    ``seq`` names the record and ``problem`` says what is wrong with it; run
    :func:`verify_chain` over the store for the full list of breaks.
    """

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(f"journal record {seq}: {problem}")
        self.seq = seq
        self.problem = problem


class JournalRecord(msgspec.Struct, frozen=True):
    """One stored event: sequence number, time, type name, decoded payload, chain value.

    ``raw`` is the payload exactly as stored and chained, so an auditor can recompute the
    chain (``chain_next(previous.chain, record.raw) == record.chain``).
    """

    seq: int
    ts: int
    type: str
    payload: dict[str, Any]
    chain: bytes
    raw: bytes = b""


class ChainBreak(msgspec.Struct, frozen=True):
    """Where the chain of a journal breaks (``seq``) and what is wrong there (``problem``)."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.problem}"


_blake2b = hashlib.blake2b


def chain_next(previous: bytes, payload: bytes) -> bytes:
    """The chain value after ``payload``: blake2b-128 of the previous value and the payload."""
    return _blake2b(previous + payload, digest_size=16).digest()


class Journal:
    """Append-only event journal over a :class:`~predator.ledger.stores.JournalStore`.

    Give one of: ``path`` (an SQLite file, as always; ``None`` keeps it in memory), ``url``
    (see :func:`~predator.ledger.stores.open_store`) or ``store``. The chain and digest are
    computed the same way whatever the store. Appends are buffered and written
    ``batch_size`` at a time in one transaction (group commit); :meth:`flush` forces it.
    The journal owns its store: :meth:`close` closes it.

    Example::

        with Journal.open("postgresql://postgres@127.0.0.1/test?journal=run_1") as journal:
            journal.append(event)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 2048,
        store: JournalStore | None = None,
        url: str | os.PathLike[str] | None = None,
    ) -> None:
        if sum(given is not None for given in (path, store, url)) > 1:
            raise ValueError("give a Journal one of path, url= or store=, not several")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if store is None:
            if url is not None:
                store = open_store(url)
            else:
                store = SqliteStore(":memory:" if path is None else path)
        self.store: JournalStore = store
        self.path: str | None = None
        """The SQLite file behind this journal, if there is one."""
        if isinstance(store, SqliteStore) and store.path != ":memory:":
            self.path = store.path
        self._encode = msgspec.json.Encoder().encode
        self._batch_size = batch_size
        self._pending: list[StoredRow] = []
        self._flush_at = batch_size
        self.commit_failures = 0
        """Automatic group commits that failed (their records stayed pending)."""
        self.last_commit_error: str | None = None
        """Why the last commit failed, while it has not succeeded since."""
        self._seq, self._chain = store.load_tail()
        self._closed = False
        self._severed = False

    @classmethod
    def open(cls, url: str | os.PathLike[str], *, batch_size: int = 2048) -> Journal:
        """The journal at ``url`` (``sqlite:///path``, ``postgresql://...``, a plain path...)."""
        return cls(url=url, batch_size=batch_size)

    # -- writing ----------------------------------------------------------------------
    def append(self, event: Event) -> int:
        """Append ``event``; returns its sequence number. Durable after the next flush."""
        if self._closed:
            if self._severed:
                return self._seq  # the process is dead: nothing it does reaches the disk
            raise JournalClosed("journal is closed")
        # The hot path of every simulation: encode, chain, buffer. Keep it this lean.
        payload = self._encode(event)
        chain = _blake2b(self._chain + payload, digest_size=16).digest()
        self._chain = chain
        seq = self._seq = self._seq + 1
        pending = self._pending
        pending.append((seq, event.ts, type(event).__name__, payload, chain))
        if len(pending) >= self._flush_at:
            self._group_commit()
        return seq

    def _group_commit(self) -> None:
        """The automatic group commit: a store that fails does not stop the caller.

        The records stay pending (nothing is lost) and the commit is retried one batch
        later or at the next :meth:`flush`; :attr:`commit_failing` tells the node, which
        halts trading meanwhile. Another writer (:class:`SeqConflict`) is never retried.
        """
        self.retry_commit()

    def retry_commit(self) -> bool:
        """Commit what is pending; on a store error keep it pending and record why.

        Returns True when nothing is left pending. Never retries over another writer:
        :class:`SeqConflict` propagates.
        """
        try:
            self.flush()
        except SeqConflict:
            raise
        except Exception as exc:  # any store error: keep the records, say so, retry later
            self.commit_failures += 1
            self.last_commit_error = f"{type(exc).__name__}: {exc}"
            self._flush_at = len(self._pending) + self._batch_size
            return False
        return True

    def flush(self) -> None:
        """Commit every pending record in one transaction (group commit).

        If the store fails, nothing of the batch is stored and the records stay pending,
        so a later flush retries them in order.
        """
        if not self._pending:
            return
        self.store.write_batch(self._pending)
        self._pending.clear()
        self._flush_at = self._batch_size
        self.last_commit_error = None

    @property
    def pending(self) -> int:
        """Records appended and not yet committed."""
        return len(self._pending)

    @property
    def commit_failing(self) -> bool:
        """True while records are pending after a failed commit (nothing durable since)."""
        return self.last_commit_error is not None

    def write_snapshot(self, payload: bytes) -> int:
        """Flush, then store ``payload`` (derived state) as of the last record; returns its seq.

        A snapshot names the record it follows and that record's chain value, so recovery
        can check it belongs to this journal and replay only the records after it.
        """
        self.flush()
        self.store.write_snapshot(self._seq, self._chain, payload)
        return self._seq

    def set_meta(self, key: str, value: str) -> None:
        """Store a run-level fact (config, data digest) outside the event chain."""
        self.store.set_meta(key, value)

    def sever(self) -> None:
        """Simulate the process dying: the pending batch is lost, the store is released
        and every later append is silently dropped (a dead process writes nothing)."""
        self._pending.clear()
        self._severed = self._closed = True
        self.store.close()

    def close(self) -> None:
        """Flush and close; further appends raise :class:`JournalClosed`."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self.store.close()

    # -- reading ----------------------------------------------------------------------
    @property
    def digest(self) -> str:
        """Hex chain value of the last record: a digest of the whole journal so far."""
        return self._chain.hex()

    @property
    def last_seq(self) -> int:
        """Sequence number of the last appended record (0 when empty)."""
        return self._seq

    def records(self, from_seq: int = 1, *, flush: bool = True) -> Iterator[JournalRecord]:
        """Every durable record from ``from_seq`` in sequence order (flushes first unless
        ``flush`` is False: then only what is already committed).

        Raises :class:`JournalCorrupted` at a payload that does not decode (a torn or
        corrupted record) rather than skip it; :meth:`verify` says where the chain breaks.
        """
        if flush:
            self.flush()
        decode = msgspec.json.decode
        for seq, ts, type_name, raw, chain in self.store.read(from_seq):
            try:
                payload = decode(raw)
            except msgspec.DecodeError as exc:
                raise JournalCorrupted(seq, f"payload does not decode ({exc})") from None
            yield JournalRecord(seq, ts, type_name, payload, chain, raw)

    def verify(self) -> list[ChainBreak]:
        """Check the durable journal's chain (flushes first); ``[]`` when intact."""
        self.flush()
        return verify_chain(self.store.read())

    def meta(self) -> dict[str, str]:
        """All run-level facts."""
        return self.store.meta()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- tamper evidence ------------------------------------------------------------------------
_LOOKAHEAD = 64
"""How far around a break :func:`verify_chain` looks for a record that was moved."""


class _Entry(msgspec.Struct, frozen=True):
    seq: int
    raw: bytes
    chain: bytes


def _entry(record: JournalRecord | StoredRow) -> _Entry:
    if isinstance(record, JournalRecord):
        return _Entry(record.seq, record.raw, record.chain)
    return _Entry(record[0], record[3], record[4])


def verify_chain(
    records: Iterable[JournalRecord | StoredRow],
    *,
    after_seq: int = 0,
    after_chain: bytes = GENESIS,
    expected_tail: tuple[int, bytes] | None = None,
) -> list[ChainBreak]:
    """Every break in a journal's chain, ordered by sequence number; ``[]`` when intact.

    ``records`` are :class:`JournalRecord` objects (their ``raw`` bytes are checked, so
    records built without them fail) or store rows ``(seq, ts, type, payload, chain)`` as
    ``JournalStore.read()`` yields them, in stored order. The first break is the first
    place the journal cannot be trusted; its ``problem`` starts with what is wrong:

    - ``missing``: sequence numbers absent (a removed record);
    - ``duplicate``: the same sequence number twice, or a copy of an earlier record;
    - ``reordered``: a record (or its payload) stored at the wrong sequence number;
    - ``payload edited``: the payload no longer hashes to its chain value (or a record
      before it was removed, or rewritten along with a recomputed chain value);
    - ``chain value altered``: the payload is intact, the stored chain value is not;
    - ``torn``: a payload that does not decode as a JSON object. At the last record this
      is a partial write (a crash mid-record): recovery discards it with
      ``store.truncate_after(seq - 1)``; anywhere else it is corruption.

    Payloads are decoded only where the chain does not follow, so an intact journal costs
    one blake2b per record. To check a tail, pass the last trusted ``after_seq`` and
    ``after_chain`` (from a snapshot). A chain cannot know what came after its last
    record: to catch a cut-off tail, pass ``expected_tail=(seq, chain)`` known from
    elsewhere (a run result, a snapshot, an operator's note of the digest).
    """
    breaks, entries = _check_sequence_numbers([_entry(r) for r in records], after_seq)
    walk = _ChainWalk(entries, after_seq, after_chain)
    breaks.extend(walk.run())
    if expected_tail is not None:
        breaks.extend(_check_tail(entries, walk.chain_at, after_seq, expected_tail))
    breaks.sort(key=lambda found: found.seq)
    return breaks


def _check_sequence_numbers(
    entries: list[_Entry], after_seq: int
) -> tuple[list[ChainBreak], list[_Entry]]:
    """Breaks in the numbering alone, and the entries in sequence order, one per number."""
    breaks: list[ChainBreak] = []
    by_seq: dict[int, _Entry] = {}
    highest = after_seq
    for entry in entries:
        seq = entry.seq
        if seq <= after_seq:
            breaks.append(ChainBreak(seq, f"out of range: seq {seq} is at or before {after_seq}"))
            continue
        first = by_seq.get(seq)
        if first is not None:
            same = (first.raw, first.chain) == (entry.raw, entry.chain)
            kind = "an identical copy" if same else "different contents"
            breaks.append(ChainBreak(seq, f"duplicate: seq {seq} appears twice ({kind})"))
            continue
        if seq < highest:
            breaks.append(ChainBreak(seq, f"reordered: seq {seq} is stored after seq {highest}"))
        by_seq[seq] = entry
        highest = max(highest, seq)
    ordered = [by_seq[seq] for seq in sorted(by_seq)]
    expected = after_seq + 1
    for entry in ordered:
        if entry.seq > expected:
            breaks.append(ChainBreak(expected, f"missing: {_span(expected, entry.seq - 1)}"))
        expected = entry.seq + 1
    return breaks, ordered


def _span(first: int, last: int) -> str:
    return f"seq {first} not stored" if first == last else f"seq {first}..{last} not stored"


def _check_tail(
    entries: list[_Entry],
    chain_at: dict[int, bytes],
    after_seq: int,
    expected_tail: tuple[int, bytes],
) -> list[ChainBreak]:
    tail_seq, tail_chain = expected_tail
    last_seq = entries[-1].seq if entries else after_seq
    if last_seq < tail_seq:
        span = _span(last_seq + 1, tail_seq)
        return [ChainBreak(last_seq + 1, f"missing: {span} (the journal is cut off)")]
    if tail_seq in chain_at and chain_at[tail_seq] != tail_chain:
        return [ChainBreak(tail_seq, "chain value differs from the trusted one for this seq")]
    return []


class _ChainWalk:
    """Walks the chain over entries in sequence order; explains and resyncs at each break.

    ``order`` maps each slot (sequence number, in place) to the entry walked there: when a
    record is found to belong elsewhere, the two are swapped so one fault is reported once.
    """

    def __init__(self, entries: list[_Entry], after_seq: int, after_chain: bytes) -> None:
        self.entries = entries
        self.slots = [entry.seq for entry in entries]
        self.order = list(range(len(entries)))
        self.previous_seq, self.chain = after_seq, after_chain
        self.chain_at: dict[int, bytes] = {}
        self.breaks: list[ChainBreak] = []
        self._walked: dict[bytes, int] | None = None  # chain value -> seq; built on demand
        self._moved_payloads: set[frozenset[int]] = set()

    def _accept(self, seq: int, chain: bytes, *, adds: bool = True) -> None:
        if adds:
            self.chain = chain
            if self._walked is not None:
                self._walked.setdefault(chain, seq)
        self.previous_seq = seq
        self.chain_at[seq] = self.chain

    def _report(self, seq: int, problem: str) -> None:
        self.breaks.append(ChainBreak(seq, problem))

    def run(self) -> list[ChainBreak]:
        position = 0
        while position < len(self.order):
            seq, entry = self.slots[position], self.entries[self.order[position]]
            if seq != self.previous_seq + 1:  # after a gap (reported): nothing to check against
                self._accept(seq, entry.chain)
            else:
                computed = chain_next(self.chain, entry.raw)
                if computed == entry.chain:
                    self._accept(seq, computed)
                elif self._explain(position, seq, entry, computed):
                    continue  # a moved record was put back: walk this slot again
            position += 1
        return self.breaks

    def _explain(self, position: int, seq: int, entry: _Entry, computed: bytes) -> bool:
        """Report why the chain breaks at ``position`` and resync; True to walk it again."""
        if not _decodes(entry.raw):
            if position == len(self.order) - 1:
                problem = (
                    f"torn: the last record's payload ({len(entry.raw)} bytes) does not "
                    f"decode; a partial write, to discard with truncate_after({seq - 1})"
                )
            else:
                problem = (
                    f"torn: the payload ({len(entry.raw)} bytes) does not decode; records "
                    "follow it, so this is corruption, not a partial write"
                )
            self._report(seq, problem)
            self._accept(seq, entry.chain)
            return False
        copied = self._walked_seqs().get(entry.chain)
        if copied is not None:
            self._report(seq, f"duplicate: a copy of seq {copied}")
            self._accept(seq, entry.chain, adds=False)  # the copy adds nothing to the chain
            return False
        window = range(
            max(0, position - _LOOKAHEAD), min(len(self.order), position + _LOOKAHEAD + 1)
        )
        moved = self._moved_record(position, window)
        if moved is not None:
            origin = self.entries[self.order[moved]].seq
            self._report(seq, f"reordered: the record stored at seq {origin} belongs at seq {seq}")
            self.order[position], self.order[moved] = self.order[moved], self.order[position]
            return True
        source = self._moved_payload(position, window, entry.chain)
        if source is not None:
            origin = self.entries[self.order[source]].seq
            pair = frozenset((seq, origin))
            if pair not in self._moved_payloads:
                self._moved_payloads.add(pair)
                self._report(
                    seq, f"reordered: the payload stored at seq {origin} belongs at seq {seq}"
                )
            self._accept(seq, entry.chain)
            return False
        self._report(seq, self._edited_or_altered(position, seq, entry, computed))
        return False

    def _edited_or_altered(self, position: int, seq: int, entry: _Entry, computed: bytes) -> str:
        """Tell an edited payload from an altered chain value by the record after it."""
        following = None
        if position + 1 < len(self.order) and self.slots[position + 1] == seq + 1:
            following = self.entries[self.order[position + 1]]
        if following is not None and chain_next(computed, following.raw) == following.chain:
            self._accept(seq, computed)
            return (
                "chain value altered: the payload is intact but its stored chain value is "
                "not the hash of it"
            )
        self._accept(seq, entry.chain)
        if following is not None and chain_next(entry.chain, following.raw) == following.chain:
            return (
                "payload edited: it no longer hashes to its chain value (or a record before "
                "it was removed, or rewritten with a recomputed chain value)"
            )
        return (
            f"payload edited or chain value altered: the chain does not follow from seq {seq - 1}"
        )

    def _walked_seqs(self) -> dict[bytes, int]:
        """Chain value -> seq of every record walked so far (built at the first break)."""
        if self._walked is None:
            self._walked = {}
            for seq, chain in self.chain_at.items():
                self._walked.setdefault(chain, seq)
        return self._walked

    def _moved_record(self, position: int, window: range) -> int | None:
        """A later slot whose whole record follows the chain: it belongs at ``position``."""
        for other in window:
            if other > position:
                candidate = self.entries[self.order[other]]
                if chain_next(self.chain, candidate.raw) == candidate.chain:
                    return other
        return None

    def _moved_payload(self, position: int, window: range, target: bytes) -> int | None:
        """Another slot whose payload, following the chain, gives this slot's chain value."""
        for other in window:
            if other != position:
                candidate = self.entries[self.order[other]]
                if chain_next(self.chain, candidate.raw) == target:
                    return other
        return None


def _decodes(raw: bytes) -> bool:
    try:
        return isinstance(msgspec.json.decode(raw), dict)
    except msgspec.DecodeError:
        return False
