"""The compiled fast path of the book check gives exactly what the pure-Python path gives.

``predator.market._fastbook`` (built by ``pip install -e .``) scans capture blocks and
writes diffs into the book; without it the msgspec path does both. Same reports, same
books, same blocks on the real captures; odd shapes go to the msgspec path.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from predator.market import _check_blocks, order_book
from predator.market.book_sync import check_binance_capture
from predator.market.order_book import OrderBook
from predator.testkit import shared_data_dir

DATA = shared_data_dir()
SPOT = [
    DATA / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz",
    DATA / "hftbacktest_binance_spot_btcusdt_20240809.jsonl.gz",
]
USDM = [DATA / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"]


def test_the_compiled_fast_path_is_built() -> None:
    assert _check_blocks.compiled(), (
        "predator.market._fastbook is missing: `pip install -e .` compiles it (needs a C "
        "compiler and the Python headers); without it the book check is ~2x slower"
    )


def _rebuilt(paths: list[Path], *, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    with monkeypatch.context() as patch:
        if not compiled:
            patch.setattr(_check_blocks, "_fastbook", None)
            patch.setattr(order_book, "_update_side", None)
        book = OrderBook("BTCUSDT")
        events: list[object] = []
        report = check_binance_capture(paths, book=book, publish=events.append)
    return (
        report.to_json(),
        events,
        dict(book._bids),
        dict(book._asks),
        book.best_bid(),
        book.best_ask(),
        book.bids(50),
        book.asks(50),
        book.last_update_id,
    )


@pytest.mark.parametrize("paths", [SPOT, USDM], ids=["spot 0808+0809", "usdm 0808"])
def test_compiled_and_pure_python_book_checks_agree_on_real_captures(
    paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _rebuilt(paths, compiled=True, monkeypatch=monkeypatch)
    slow = _rebuilt(paths, compiled=False, monkeypatch=monkeypatch)
    assert fast == slow
    assert fast[0]["checks"] > 6000


@pytest.mark.parametrize("paths", [SPOT, USDM], ids=["spot 0808+0809", "usdm 0808"])
def test_the_scanner_reads_every_real_block_as_the_msgspec_path_does(paths: list[Path]) -> None:
    names = [str(p) for p in paths]
    fast = list(_check_blocks.iter_check_blocks(names, use_compiled=True))
    slow = list(_check_blocks.iter_check_blocks(names, use_compiled=False))
    assert len(fast) == len(slow) > 1
    for a, b in zip(fast, slow, strict=True):
        assert all(type(t) is tuple for t in a.tickers)  # no block fell back
        assert (a.path, a.first_line, a.lines, a.trades, a.out_of_order) == (
            b.path,
            b.first_line,
            b.lines,
            b.trades,
            b.out_of_order,
        )
        assert (a.last_ticker_id, a.ticker_ids, a.records) == (
            b.last_ticker_id,
            b.ticker_ids,
            b.records,
        )
        assert (a.first_diff_pu, a.first_diff_symbol) == (b.first_diff_pu, b.first_diff_symbol)
        quoted = [t[1:] for t in a.tickers]
        assert quoted[:50] == [_quote(t, a.price_decimals, a.size_decimals) for t in b.tickers[:50]]


def _quote(ticker: object, price: int, size: int) -> tuple[int, ...]:
    from predator.market._binance_depth import raw_text, to_units

    t: object = ticker
    return (
        to_units(raw_text(t.b), price),  # type: ignore[attr-defined]
        to_units(t.B, size),  # type: ignore[attr-defined]
        to_units(raw_text(t.a), price),  # type: ignore[attr-defined]
        to_units(t.A, size),  # type: ignore[attr-defined]
    )


DIFF = (
    b'1 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"s":"BTCUSDT",'
    b'"U":10,"u":12,"b":[["100.50","1.000"]],"a":[["101.00","0.000"]]}}\n'
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"", b""),  # the plain shape is read
        (b'"E":2,', b'"E": 2,'),  # whitespace
        (b"100.50", b"100.505"),  # more decimals than the stream's prices
        (b'"BTCUSDT"', b'"BTC\\u0055SDT"'),  # an escape
        (b"depthUpdate", b"depthUpdated"),  # an unknown event type
        (b'"U":10,', b'"U":10,"U":11,'),  # a duplicate key
        (b'"u":12', b'"u":"12"'),  # a string id
        (b'"E":2', b'"E":2.5'),  # a float
    ],
)
def test_the_scanner_leaves_any_unusual_line_to_the_msgspec_path(old: bytes, new: bytes) -> None:
    fastbook = _check_blocks._fastbook
    assert fastbook is not None
    scanned = fastbook.scan_block(DIFF.replace(old, new), 2, 3, -1)
    if not old:
        assert scanned is not None
        assert scanned[4] == [(1, 0, 1, 10, 12, -1, [10050, 1000], [10100, 0], 0)]
    else:
        assert scanned is None


def test_compiled_update_side_keeps_the_same_book_and_best_as_python() -> None:
    update_side = order_book._update_side
    assert update_side is not None
    rng = random.Random(4)
    fast, slow = OrderBook("X"), OrderBook("X")
    levels = [(p, rng.randrange(1, 9)) for p in range(1000, 1400, 2)]
    for book in (fast, slow):
        book.load(levels, [(p + 500, q) for p, q in levels], 1)
    for step in range(3000):
        bids = [x for _ in range(rng.randrange(0, 6)) for x in _level(rng, 900, 1500)]
        asks = [x for _ in range(rng.randrange(0, 6)) for x in _level(rng, 1400, 2000)]
        fast.update_flat(bids, asks)
        order_book._update_side = None
        try:
            slow.update_flat(bids, asks)
        finally:
            order_book._update_side = update_side
        if step % 3 == 0:  # reads between some updates, not others (lazy best)
            assert (fast.best_bid(), fast.best_ask()) == (slow.best_bid(), slow.best_ask())
        assert (fast._bids, fast._asks) == (slow._bids, slow._asks)
    assert fast.bids(20) == slow.bids(20) and fast.asks(20) == slow.asks(20)


def _level(rng: random.Random, low: int, high: int) -> tuple[int, int]:
    size = 0 if rng.random() < 0.5 else rng.randrange(1, 50)
    return rng.randrange(low, high), size
