"""The book rebuilt from real Binance captures agrees with the venue's own bookTicker.

Acceptance for the L2 replay (issue #4): spot 0808, spot 0808 then its continuation 0809,
USD-M 0808; a deleted diff is a gap that invalidates the book until a resync.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from predator.core.events import Event
from predator.market import MarketDataInvalidated, MarketDataRestored
from predator.market.book_sync import SPOT, BookSync
from predator.market.depth_loader import (
    BookCheckReport,
    check_binance_capture,
    read_binance_capture,
)
from predator.market.l2 import BookDelta, BookSnapshot, QuoteTick, TradeTick
from predator.market.order_book import OrderBook
from predator.testkit import shared_data_dir

DATA = shared_data_dir()
SPOT_0808 = DATA / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
SPOT_0809 = DATA / "hftbacktest_binance_spot_btcusdt_20240809.jsonl.gz"
USDM_0808 = DATA / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


@pytest.fixture(scope="module")
def spot_0808() -> BookCheckReport:
    return check_binance_capture([SPOT_0808])


@pytest.fixture(scope="module")
def spot_both() -> BookCheckReport:
    return check_binance_capture([SPOT_0808, SPOT_0809])


@pytest.fixture(scope="module")
def usdm() -> BookCheckReport:
    return check_binance_capture([USDM_0808])


def test_spot_0808_book_agrees_with_every_reached_book_ticker(spot_0808: BookCheckReport) -> None:
    r = spot_0808
    assert (r.market, r.symbol, r.price_decimals, r.size_decimals) == ("spot", "BTCUSDT", 2, 8)
    assert (r.messages, r.snapshots, r.diffs, r.tickers, r.trades) == (41249, 1, 3451, 28040, 9757)
    # The two diffs before the snapshot are covered by it; the third was buffered and joins.
    assert (r.diffs_applied, r.diffs_dropped, r.chain_checked) == (3449, 2, 3448)
    assert r.checks == 3449  # every applied diff compared with the bookTicker of record
    assert r.mismatches == 0 and r.gaps == 0 and r.valid_at_end


def test_spot_0809_continues_0808_and_only_the_two_known_mismatches_remain(
    spot_both: BookCheckReport,
) -> None:
    r = spot_both
    assert (r.messages, r.snapshots, r.diffs_applied, r.gaps) == (99574, 1, 6493, 0)
    assert r.chain_checked == 6492  # U == previous u + 1 across the file boundary too
    assert r.checks == 6493
    assert r.mismatches == 2
    first, second = r.mismatch_details
    # The data README: the capture lacks bookTicker messages for the update ids between.
    assert Path(first["file"]).name == SPOT_0809.name and first["line"] == 12880
    assert (first["update_id"], first["ticker_update_id"]) == (50093478174, 50093478171)
    assert first["book"] == [6156491, 9000, 6156517, 883000]  # 61564.91 x 0.00009
    assert first["ticker"] == [6156510, 76000, 6156517, 883000]
    assert Path(second["file"]).name == SPOT_0809.name and second["line"] == 13464
    assert (second["update_id"], second["ticker_update_id"]) == (50093480542, 50093480538)


def test_usdm_book_agrees_and_the_pu_chain_is_checked_on_every_diff(usdm: BookCheckReport) -> None:
    r = usdm
    assert (r.market, r.price_decimals, r.size_decimals) == ("usdm", 1, 3)
    assert (r.messages, r.diffs, r.tickers, r.trades) == (93954, 6551, 66089, 21313)
    assert (r.diffs_applied, r.diffs_dropped) == (6547, 4)
    # Every applied diff but the first after the snapshot (U <= lastUpdateId <= u) had
    # its pu compared with the previous diff's u.
    assert r.chain_checked == r.diffs_applied - r.snapshots == 6546
    assert r.checks == 6546 and r.mismatches == 0 and r.gaps == 0 and r.valid_at_end


def test_event_reader_yields_typed_l2_events_in_line_order() -> None:
    counts: dict[type, int] = {}
    first: dict[type, Event] = {}
    last_ts = 0
    for event in read_binance_capture([SPOT_0808]):
        counts[type(event)] = counts.get(type(event), 0) + 1
        first.setdefault(type(event), event)
        assert event.ts >= last_ts - 10**9  # receive stamps, roughly ordered
        last_ts = event.ts
    assert counts == {BookDelta: 3451, QuoteTick: 28040, TradeTick: 9757, BookSnapshot: 1}
    snapshot = first[BookSnapshot]
    assert isinstance(snapshot, BookSnapshot)
    assert snapshot.last_update_id == 50093239218
    assert snapshot.bids[0] == (6183763, 378826000)  # 61837.63 x 3.78826, best first
    assert len(snapshot.bids) == len(snapshot.asks) == 1000
    assert snapshot.asks[0][0] > snapshot.bids[0][0]
    delta = first[BookDelta]
    assert isinstance(delta, BookDelta)
    assert (delta.first_update_id, delta.last_update_id, delta.prev_update_id) == (
        50093239189,
        50093239202,
        -1,
    )
    assert delta.bids[0] == (6173763, 0) and delta.exchange_ts == 1723161255208 * 10**6
    quote = first[QuoteTick]
    assert isinstance(quote, QuoteTick)
    assert (quote.update_id, quote.bid_price, quote.bid_size) == (
        50093239212,
        6183763,
        378826000,
    )
    trade = first[TradeTick]
    assert isinstance(trade, TradeTick)
    assert (trade.trade_id, trade.price, trade.size) == (3735683259, 6183763, 2000000)
    assert trade.aggressor == "sell"  # m: buyer is maker -> the seller took liquidity


def test_event_reader_and_book_sync_rebuild_the_same_book_as_the_fast_check() -> None:
    book = OrderBook("BTCUSDT")
    sync = BookSync(book, SPOT)
    for event in read_binance_capture([USDM_0808]):
        if isinstance(event, BookSnapshot):
            sync.apply_snapshot(event)
        elif isinstance(event, BookDelta):
            if sync.market == SPOT and event.prev_update_id != -1:
                sync.market = "usdm"
            sync.apply_delta(event)
    fast = OrderBook("BTCUSDT")
    check_binance_capture([USDM_0808], book=fast)
    assert sync.applied == 6547 and book.valid and fast.valid
    assert book.last_update_id == fast.last_update_id
    assert book.bids(50) == fast.bids(50) and book.asks(50) == fast.asks(50)
    assert book.depth() == fast.depth()


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as handle:
        return handle.read().splitlines(keepends=True)


def _snapshot_line(ts: int, book: OrderBook) -> bytes:
    def text(units: int, decimals: int) -> str:  # written as Binance spot does: 8 decimals
        whole, fraction = divmod(units, 10**decimals)
        return f"{whole}.{fraction:0{decimals}d}".ljust(len(str(whole)) + 9, "0")

    body = {
        "lastUpdateId": book.last_update_id,
        "bids": [[text(p, 2), text(q, 8)] for p, q in book.bids(10**6)],
        "asks": [[text(p, 2), text(q, 8)] for p, q in book.asks(10**6)],
    }
    return b"%d %s\n" % (ts, json.dumps(body, separators=(",", ":")).encode())


def test_a_missing_diff_invalidates_the_book_until_a_resync(tmp_path: Path) -> None:
    lines = _lines(SPOT_0808)
    diffs = [i for i, line in enumerate(lines) if b"@depth" in line]
    dropped, resync_after = diffs[1000], diffs[2000]
    # The true book right after diff 2000, as a REST snapshot would show it.
    book = OrderBook("BTCUSDT")
    sync = BookSync(book, SPOT)
    for number, event in enumerate(read_binance_capture([SPOT_0808]), start=0):
        if isinstance(event, BookSnapshot):
            sync.apply_snapshot(event)
        elif isinstance(event, BookDelta):
            sync.apply_delta(event)
        if number == resync_after:
            resync_ts = event.ts
            break
    broken = [
        *lines[:dropped],
        *lines[dropped + 1 : resync_after + 1],
        _snapshot_line(resync_ts, book),
        *lines[resync_after + 1 :],
    ]
    path = tmp_path / "hftbacktest_spot_gap.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.writelines(broken)

    published: list[Event] = []
    report = check_binance_capture([path], publish=published.append)
    assert report.gaps == 1
    invalidated, restored = published
    assert isinstance(invalidated, MarketDataInvalidated) and invalidated.symbol == "BTCUSDT"
    assert "depth gap" in invalidated.reason and "U " in invalidated.reason
    assert isinstance(restored, MarketDataRestored) and restored.ts == resync_ts
    # Diffs between the gap and the resync were not applied, nor compared.
    assert report.snapshots == 2
    assert report.diffs_applied == 3449 - 1 - (2000 - 1000)
    assert report.mismatches == 0 and report.valid_at_end


def test_without_a_resync_the_book_stays_invalid(tmp_path: Path) -> None:
    lines = _lines(SPOT_0808)
    dropped = [i for i, line in enumerate(lines) if b"@depth" in line][1000]
    path = tmp_path / "gap.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.writelines(lines[:dropped] + lines[dropped + 1 :])
    book = OrderBook("BTCUSDT")
    published: list[Event] = []
    report = check_binance_capture([path], publish=published.append, book=book)
    assert [type(e) for e in published] == [MarketDataInvalidated]
    assert report.gaps == 1 and not report.valid_at_end and not book.valid
    # Diffs 2..999 (0 and 1 came before the snapshot) were applied and compared; none after.
    assert report.diffs_applied == 998 and report.checks == 998
