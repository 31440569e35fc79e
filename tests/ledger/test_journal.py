"""Specs for the Journal: an append-only, hash-chained event log on SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from predator.core.events import Event
from predator.execution import OrderFilled
from predator.ledger import Journal, JournalClosed
from predator.ledger.journal import GENESIS, chain_next
from predator.testkit.builders import order_filled
from predator.venue import Side


class CashDeposited(Event, frozen=True, kw_only=True):
    amount: int
    note: str = ""


def session() -> list[Event]:
    """A small, fixed sequence of events of two types."""
    return [
        CashDeposited(ts=1, amount=1_000_000, note="initial"),
        order_filled(Side.BUY, 10, 10101, fee=101_010_000, ts=2, trade_id="T1"),
        order_filled(Side.SELL, 4, 11075, fee=44_300_000, ts=3, trade_id="T2"),
        CashDeposited(ts=4, amount=-500),
    ]


def digest_of(events: list[Event]) -> str:
    journal = Journal()
    for event in events:
        journal.append(event)
    return journal.digest


def durable_rows(path: Path) -> int:
    """Rows another process would see in the journal file right now."""
    reader = sqlite3.connect(path)
    try:
        count: int = reader.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        reader.close()
    return count


# -- the chain ----------------------------------------------------------------------------
def test_an_empty_journal_has_the_genesis_digest_and_no_records() -> None:
    journal = Journal()
    assert journal.digest == GENESIS.hex()
    assert journal.last_seq == 0
    assert list(journal.records()) == []


def test_the_same_events_give_the_same_digest() -> None:
    assert digest_of(session()) == digest_of(session())


def test_a_changed_event_gives_a_different_digest() -> None:
    changed = session()
    changed[2] = msgspec.structs.replace(changed[2], price=11076)  # one cent

    assert digest_of(changed) != digest_of(session())


def test_reordered_or_missing_events_give_a_different_digest() -> None:
    events = session()
    swapped = [events[0], events[2], events[1], events[3]]

    assert digest_of(swapped) != digest_of(events)
    assert digest_of(events[:-1]) != digest_of(events)


def test_digest_is_the_blake2b_chain_of_the_json_encoded_events() -> None:
    chain = GENESIS
    for event in session():
        chain = chain_next(chain, msgspec.json.encode(event))

    assert digest_of(session()) == chain.hex()


def test_each_record_carries_the_chain_value_after_it() -> None:
    journal = Journal()
    for event in session():
        journal.append(event)

    chain = GENESIS
    for record, event in zip(journal.records(), session(), strict=True):
        chain = chain_next(chain, msgspec.json.encode(event))
        assert record.chain == chain
    assert journal.digest == chain.hex()


# -- reading back -------------------------------------------------------------------------
def test_records_round_trip_seq_ts_type_and_payload() -> None:
    journal = Journal()
    events = session()
    seqs = [journal.append(event) for event in events]

    records = list(journal.records())

    assert seqs == [1, 2, 3, 4] == [r.seq for r in records]
    assert journal.last_seq == 4
    assert [r.ts for r in records] == [1, 2, 3, 4]
    assert [r.type for r in records] == [
        "CashDeposited",
        "OrderFilled",
        "OrderFilled",
        "CashDeposited",
    ]
    assert records[1].payload["price"] == 10101
    assert records[1].payload["side"] == Side.BUY
    for record, event in zip(records, events, strict=True):
        assert msgspec.convert(record.payload, type(event)) == event
    assert msgspec.convert(records[1].payload, OrderFilled).trade_id == "T1"


# -- durability on disk -------------------------------------------------------------------
def test_records_become_durable_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, batch_size=3)
    events = session()

    journal.append(events[0])
    journal.append(events[1])
    assert durable_rows(path) == 0  # still in the pending batch

    journal.append(events[2])  # fills the batch: committed as one transaction
    assert durable_rows(path) == 3

    journal.append(events[3])
    assert durable_rows(path) == 3
    journal.flush()
    assert durable_rows(path) == 4
    journal.close()


def test_close_flushes_pending_records(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        for event in session():
            journal.append(event)
        assert durable_rows(path) == 0

    assert durable_rows(path) == 4


def test_a_reopened_journal_continues_the_chain_and_the_sequence(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    events = session()
    with Journal(path) as first:
        for event in events[:2]:
            first.append(event)
        digest_after_two = first.digest

    with Journal(path) as reopened:
        assert (reopened.last_seq, reopened.digest) == (2, digest_after_two)
        assert [reopened.append(event) for event in events[2:]] == [3, 4]
        assert reopened.digest == digest_of(events)
        assert [r.seq for r in reopened.records()] == [1, 2, 3, 4]


def test_a_reader_sees_only_what_was_flushed(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    writer = Journal(path)
    events = session()
    writer.append(events[0])
    writer.append(events[1])
    writer.flush()
    writer.append(events[2])  # pending: not durable yet

    reader = Journal(path)
    assert reader.last_seq == 2
    assert [r.type for r in reader.records()] == ["CashDeposited", "OrderFilled"]
    reader.close()
    writer.close()


def test_meta_is_kept_outside_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        journal.append(session()[0])
        digest = journal.digest
        journal.set_meta("format", "predator-journal/1")
        journal.set_meta("format", "predator-journal/2")
        assert journal.digest == digest

    with Journal(path) as reopened:
        assert reopened.meta() == {"format": "predator-journal/2"}
        assert reopened.digest == digest


# -- closing ------------------------------------------------------------------------------
def test_appending_to_a_closed_journal_raises_journal_closed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    journal.append(session()[0])
    journal.close()
    journal.close()  # closing twice is harmless

    with pytest.raises(JournalClosed):
        journal.append(session()[1])
    assert journal.last_seq == 1
    with Journal(tmp_path / "journal.sqlite") as reopened:
        assert reopened.last_seq == 1


def test_leaving_the_with_block_closes_the_journal() -> None:
    with Journal() as journal:
        journal.append(session()[0])
    with pytest.raises(JournalClosed):
        journal.append(session()[1])


def test_money_beyond_64_bits_is_journaled_exactly(tmp_path: Path) -> None:
    """Cash 10,000,000 at 8 size decimals needs 10**23 money units: no overflow."""
    from predator.node import RunCompleted

    journal = Journal(tmp_path / "big.sqlite")
    journal.append(RunCompleted(ts=1, final_equity=10**23 + 7, trades=0, fills=0, orders=0))
    (record,) = list(journal.records())
    assert record.payload["final_equity"] == 10**23 + 7
    journal.close()
