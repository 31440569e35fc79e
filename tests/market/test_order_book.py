"""The L2 book and the order-level book: levels, best prices, FIFO queues."""

from __future__ import annotations

from fractions import Fraction

import pytest

from predator.market import BookDelta, BookError, BookSnapshot, OrderBook, OrderBookEvent
from predator.market.order_book import OrderLevelBook


def snapshot(last_update_id: int = 10) -> BookSnapshot:
    return BookSnapshot(
        ts=1,
        symbol="X",
        last_update_id=last_update_id,
        bids=((100, 5), (99, 7), (97, 1)),
        asks=((101, 2), (103, 4)),
    )


def delta(first: int, last: int, bids=(), asks=()) -> BookDelta:  # type: ignore[no-untyped-def]
    return BookDelta(
        ts=2, symbol="X", first_update_id=first, last_update_id=last, bids=bids, asks=asks
    )


def test_book_is_invalid_and_empty_until_a_snapshot() -> None:
    book = OrderBook("X")
    assert not book.valid
    assert book.last_update_id == -1
    assert book.best_bid() is None and book.best_ask() is None and book.mid() is None


def test_snapshot_sets_levels_best_first() -> None:
    book = OrderBook("X")
    book.apply_snapshot(snapshot())
    assert book.valid and book.last_update_id == 10
    assert book.best_bid() == (100, 5)
    assert book.best_ask() == (101, 2)
    assert book.bids(2) == [(100, 5), (99, 7)]
    assert book.asks(10) == [(101, 2), (103, 4)]
    assert book.mid() == Fraction(201, 2)
    assert book.spread() == 1
    assert book.depth() == (3, 2)


def test_delta_replaces_deletes_and_adds_levels() -> None:
    book = OrderBook("X")
    book.apply_snapshot(snapshot())
    book.apply_delta(delta(11, 12, bids=((100, 0), (98, 3)), asks=((101, 9), (102, 1))))
    assert book.last_update_id == 12
    assert book.best_bid() == (99, 7)
    assert book.bids(10) == [(99, 7), (98, 3), (97, 1)]
    assert book.best_ask() == (101, 9)
    assert book.asks(10) == [(101, 9), (102, 1), (103, 4)]
    assert book.size_at("buy", 98) == 3
    assert book.size_at("sell", 103) == 4
    assert book.size_at("buy", 100) == 0


def test_deleting_a_missing_level_is_harmless_and_emptying_a_side_gives_none() -> None:
    book = OrderBook("X")
    book.apply_snapshot(snapshot())
    book.apply_delta(delta(11, 11, asks=((101, 0), (103, 0), (150, 0))))
    assert book.best_ask() is None
    assert book.mid() is None
    book.apply_delta(delta(12, 12, asks=((105, 1),)))
    assert book.best_ask() == (105, 1)


def test_invalidate_and_clear() -> None:
    book = OrderBook("X")
    book.apply_snapshot(snapshot())
    book.invalidate("gap")
    assert not book.valid and book.invalid_reason == "gap"
    assert book.best_bid() == (100, 5)  # levels kept, but not to be trusted
    book.apply_snapshot(snapshot(20))
    assert book.valid and book.invalid_reason is None
    book.clear()
    assert not book.valid and book.best_bid() is None and book.last_update_id == -1


def test_bad_side_is_refused() -> None:
    book = OrderBook("X")
    with pytest.raises(BookError, match="side must be"):
        book.size_at("bid", 1)
    with pytest.raises(BookError, match="negative size"):
        book.set_level("buy", 1, -1)


def order(action: str, order_id: int, side: str, price: int, size: int) -> OrderBookEvent:
    return OrderBookEvent(
        ts=0, symbol="X", order_id=order_id, action=action, side=side, price=price, size=size
    )


def test_order_level_book_keeps_fifo_queues_and_the_l2_view() -> None:
    book = OrderLevelBook("X")
    book.apply(order("submit", 1, "buy", 100, 5))
    book.apply(order("submit", 2, "buy", 100, 3))
    book.apply(order("submit", 3, "sell", 102, 4))
    assert book.best_bid() == (100, 8)
    assert book.orders_at("buy", 100) == [(1, 5), (2, 3)]
    assert book.queue_ahead(2) == 5
    book.apply(order("execute", 1, "buy", 100, 2))
    assert book.orders_at("buy", 100) == [(1, 3), (2, 3)]
    book.apply(order("cancel", 2, "buy", 100, 1))
    book.apply(order("delete", 1, "buy", 100, 3))
    assert book.orders_at("buy", 100) == [(2, 2)]
    assert book.queue_ahead(2) == 0
    assert book.bids(10) == [(100, 2)]
    book.apply(order("execute_hidden", 0, "sell", 101, 7))  # the visible book is unchanged
    assert book.asks(10) == [(102, 4)]
    book.apply(order("delete", 3, "sell", 102, 4))
    assert book.best_ask() is None
    assert book.order(3) is None and book.order(2) == ("buy", 100, 2)


def test_order_level_book_takes_unknown_orders_off_the_seeded_levels() -> None:
    book = OrderLevelBook("X")
    book.seed(bids=[(100, 10)], asks=[(105, 6)])
    book.apply(order("submit", 7, "buy", 100, 1))
    book.apply(order("execute", 99, "buy", 100, 4))  # an order from before the seed
    assert book.orders_at("buy", 100)[1:] == [(7, 1)]
    assert book.best_bid() == (100, 7)
    with pytest.raises(BookError, match="exceeds"):
        book.apply(order("delete", 98, "sell", 105, 7))
    with pytest.raises(BookError, match="nothing resting there"):
        book.apply(order("cancel", 97, "sell", 110, 1))


def test_bulk_updates_track_the_best_like_a_full_scan() -> None:
    import random

    rng = random.Random(7)
    book = OrderBook("X")
    book.apply_snapshot(
        BookSnapshot(
            ts=0,
            symbol="X",
            last_update_id=0,
            bids=tuple((p, 1) for p in range(1000, 900, -3)),
            asks=tuple((p, 1) for p in range(1001, 1100, 3)),
        )
    )
    bids = dict(book.bids(1000))
    asks = dict(book.asks(1000))
    for _ in range(3000):
        flat_bids: list[int] = []
        flat_asks: list[int] = []
        mid = (max(bids, default=1000) + min(asks, default=1001)) // 2
        for _level in range(rng.randrange(0, 8)):
            price = mid - rng.randrange(1, 400)
            size = rng.choice([0, 0, 1, 5])
            flat_bids += [price, size]
            bids[price] = size
        for _level in range(rng.randrange(0, 8)):
            price = mid + rng.randrange(1, 400)
            size = rng.choice([0, 0, 2])
            flat_asks += [price, size]
            asks[price] = size
        bids = {p: q for p, q in bids.items() if q}
        asks = {p: q for p, q in asks.items() if q}
        book.update_flat(flat_bids, flat_asks)
        best_bid = max(bids, default=None)
        best_ask = min(asks, default=None)
        assert book.best_bid() == (None if best_bid is None else (best_bid, bids[best_bid]))
        assert book.best_ask() == (None if best_ask is None else (best_ask, asks[best_ask]))
        assert book.bids(3) == sorted(bids.items(), reverse=True)[:3]
        assert book.depth() == (len(bids), len(asks))
