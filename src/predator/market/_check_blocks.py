"""Capture blocks in the compact form the book check consumes (snapshots, diffs, tickers).

Each inflated block of whole lines becomes one :class:`CheckBlock`: its snapshots and
diffs with flat int levels, and the bookTickers the check keeps (ids not going back), in
line order. The compiled scanner (:mod:`predator.market._fastbook`) reads a block in one C
pass; when it is missing, or a block holds anything but the plain shapes Binance writes,
the msgspec path of :mod:`predator.market._binance_depth` reads it instead (and names the
bad line). Both give the same blocks: tests compare them on the real captures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from predator.market import _binance_depth as depth
from predator.market.errors import DataFormatError

try:
    from predator.market import _fastbook
except ImportError:  # not compiled (no C compiler at install): the msgspec path does it all
    _fastbook = None  # type: ignore[assignment]

__all__ = ["CheckBlock", "compiled", "iter_check_blocks"]

# Compressed bytes per block (~1 MB of text): small enough that inflating the next block on
# the read-ahead thread overlaps the work on this one from the start, large enough that
# per-block costs stay negligible.
_BLOCK = 1 << 17

# (kind: 0 snapshot / 1 diff, line index in the block, receive ts, U, u, pu, bids, asks,
#  tickers kept before it in the block); a snapshot's u is its lastUpdateId, U and pu -1.
Record = tuple[int, int, int, int, int, int, list[int], list[int], int]


class CheckBlock(msgspec.Struct, gc=False):
    """The book check's view of one block of whole lines of ``path``.

    ``tickers[k]`` is a kept bookTicker: a ``(u, bid, bid_size, ask, ask_size)`` int tuple
    (compiled scanner) or the decoded message (msgspec path, values read when compared);
    ``ticker_ids[k]`` its update id. ``first_diff_symbol`` is None when the block has no
    diff.
    """

    path: str
    first_line: int
    lines: int
    trades: int
    out_of_order: int
    last_ticker_id: int
    records: list[Record]
    tickers: list[Any]
    ticker_ids: list[int]
    first_diff_pu: int
    first_diff_symbol: str | None
    price_decimals: int
    size_decimals: int
    written_price: int
    written_size: int


def compiled() -> bool:
    """True when the compiled scanner is there (it is optional: see setup.py)."""
    return _fastbook is not None


def iter_check_blocks(
    paths: list[str], *, read_ahead: bool = False, use_compiled: bool = True
) -> Iterator[CheckBlock]:
    """The files in order as :class:`CheckBlock`s (one file continues the other).

    ``read_ahead`` inflates the next block on a helper thread; ``use_compiled`` False
    forces the msgspec path (the same blocks, slower).
    """
    scan = _fastbook.scan_block if use_compiled and _fastbook is not None else None
    precision = depth._Precision(None, None)
    decoders: list[msgspec.json.Decoder[Any]] = [depth._LEAN_TAGGED, depth._LEAN_UNTAGGED]
    last_ticker = -1
    for path in paths:
        line = 1
        blocks = depth._inflated(depth._open_capture(path), _BLOCK)
        if read_ahead:
            blocks = depth._read_ahead(blocks)
        try:
            for text in blocks:
                block = None
                if scan is not None and precision.detect(text):
                    assert precision.price is not None and precision.size is not None
                    scanned = scan(text, precision.price, precision.size, last_ticker)
                    if scanned is not None:
                        block = CheckBlock(
                            path,
                            line,
                            *scanned,
                            precision.price,
                            precision.size,
                            precision.written_price,
                            precision.written_size,
                        )
                if block is None:
                    chunk = depth._decode_block(path, line, text, precision, decoders)
                    block = _from_chunk(chunk, last_ticker)
                last_ticker = block.last_ticker_id
                line += block.lines
                yield block
        except depth._Broken as exc:
            raise DataFormatError(path, line, None, exc.expected, exc.got) from None


def _from_chunk(chunk: depth.CaptureChunk, last_ticker: int) -> CheckBlock:
    """A msgspec-decoded chunk as a :class:`CheckBlock` (tickers kept as messages)."""
    records: list[Record] = []
    tickers: list[Any] = []
    ticker_ids: list[int] = []
    trades = out_of_order = side = 0
    first_pu = -1
    first_symbol: str | None = None
    sides = chunk.sides
    for index, (ts, envelope) in enumerate(chunk.items):
        data: Any = envelope.data
        if data is None:
            bids, asks = sides[side], sides[side + 1]
            side += 2
            records.append((0, index, ts, -1, envelope.lastUpdateId, -1, bids, asks, len(tickers)))
        elif data.U != -1:
            if first_symbol is None:
                first_pu, first_symbol = data.pu, data.s
            bids, asks = sides[side], sides[side + 1]
            side += 2
            records.append((1, index, ts, data.U, data.u, data.pu, bids, asks, len(tickers)))
        elif data.t != -1:
            trades += 1
        elif data.u < last_ticker:
            out_of_order += 1
        else:
            last_ticker = data.u
            tickers.append(data)
            ticker_ids.append(last_ticker)
    return CheckBlock(
        chunk.path,
        chunk.first_line,
        len(chunk.items),
        trades,
        out_of_order,
        last_ticker,
        records,
        tickers,
        ticker_ids,
        first_pu,
        first_symbol,
        chunk.price_decimals,
        chunk.size_decimals,
        chunk.written_price,
        chunk.written_size,
    )
