"""LOBSTER AAPL: the order-level book, fed message by message, equals every order book row."""

from __future__ import annotations

from pathlib import Path

import pytest

from predator.market.errors import DataFormatError
from predator.market.lobster import LobsterReplay, read_lobster_messages, read_lobster_orderbook
from predator.testkit import shared_data_dir

DATA = shared_data_dir()
MESSAGES = DATA / "lobster_AAPL_2012-06-21_first998_message_10.csv"
ORDERBOOK = DATA / "lobster_AAPL_2012-06-21_first998_orderbook_10.csv"


def test_messages_are_order_book_events() -> None:
    events = list(read_lobster_messages(MESSAGES))
    assert len(events) == 999
    first = events[0]
    assert (first.symbol, first.action, first.order_id, first.side) == (
        "AAPL",
        "submit",
        16113575,
        "buy",
    )
    assert (first.price, first.size, first.ts) == (5853300, 18, 34200_004241176)
    actions = {e.action for e in events}
    assert actions == {"submit", "delete", "execute", "execute_hidden"}
    assert sum(e.action == "execute" for e in events) == 98


def test_every_row_of_the_order_book_file_is_matched() -> None:
    rows = list(read_lobster_orderbook(ORDERBOOK))
    replay = LobsterReplay(MESSAGES, ORDERBOOK)
    steps = 0
    for step in replay:
        bids, asks = rows[step.index]
        # Inside the window the previous row showed, the messages alone explain the row.
        assert step.in_window, f"row {step.index} differs inside the window"
        # And after taking what entered from below the window, the whole row matches.
        assert replay.book.bids(10) == bids and replay.book.asks(10) == asks
        steps += 1
    assert steps == 998 == len(rows) - 1
    assert replay.rows == replay.in_window == 999  # row 0 (the seed) included: 100 %
    assert replay.exact == 907  # rows matched before anything was taken from them
    assert replay.adopted == 92  # levels that entered the 10-level window from below


def test_order_queue_after_the_replay_is_price_time() -> None:
    replay = LobsterReplay(MESSAGES, ORDERBOOK).run()
    book = replay.book
    price, size = book.best_bid() or (0, 0)
    queue = book.orders_at("buy", price)
    assert sum(s for _id, s in queue) == size
    ids = [order_id for order_id, _s in queue if order_id > 0]
    assert ids == sorted(ids, key=lambda i: [o for o, _ in queue].index(i))
    if len(queue) > 1:
        second = queue[1][0]
        assert book.queue_ahead(second) == queue[0][1]


def test_bad_lobster_rows_name_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "msg.csv"
    bad.write_text("34200.1,1,5,10,5853300,1\n34200.2,9,6,10,5853300,1\n")
    with pytest.raises(
        DataFormatError, match=r"msg.csv:2: column 'type': expected an event type 1..7, got '9'"
    ):
        list(read_lobster_messages(bad))
    bad.write_text("34200.1,1,5,10,5853300\n")
    with pytest.raises(DataFormatError, match=r"msg.csv:1: expected 6 columns"):
        list(read_lobster_messages(bad))
