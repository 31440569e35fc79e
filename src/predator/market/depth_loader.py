"""Streaming readers for level-2 captures, and the book check against the venue's quotes.

- Binance websocket captures (hftbacktest ``*.jsonl.gz``): :func:`read_binance_capture`
  yields :mod:`predator.market.l2` events; :func:`check_binance_capture` (from
  :mod:`predator.market.book_sync`) rebuilds the book and compares it with every
  ``bookTicker`` the book reached.
- Binance ``T_DEPTH`` archive CSVs: :func:`read_tdepth`.
- LOBSTER files: :mod:`predator.market.lobster`.

Nothing is loaded whole: files are read in blocks. Malformed data raises
:class:`~predator.market.errors.DataFormatError` naming file, line and field.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from typing import Any

from predator.market._binance_depth import iter_capture, raw_text, to_units
from predator.market.book_sync import BookCheckReport, check_binance_capture
from predator.market.errors import DataFormatError
from predator.market.l2 import BUY, SELL, BookDelta, BookSnapshot, QuoteTick, TradeTick

__all__ = [
    "BookCheckReport",
    "check_binance_capture",
    "detect_format",
    "read_binance_capture",
    "read_tdepth",
]

_NS_PER_MS = 1_000_000
_FORMATS = (
    "binance-capture",
    "binance-tdepth",
    "lobster-message",
    "lobster-orderbook",
)


def read_binance_capture(
    paths: Sequence[str | os.PathLike[str]], *, symbol: str | None = None
) -> Iterator[BookSnapshot | BookDelta | QuoteTick | TradeTick]:
    """Yield the captures' messages as l2 events, in file and line order (streaming).

    ``ts`` is the local receive stamp; ``exchange_ts`` the venue's event (trade) time.
    Prices and sizes are ints at the decimals the stream writes (``"61837.63000000"``:
    8). Diffs come as they are: :class:`~predator.market.book_sync.BookSync` applies the
    sync rules. A snapshot carries no symbol: it gets ``symbol`` or the last one seen.
    """
    names = [os.fspath(p) for p in paths]
    last_symbol = symbol or ""
    for chunk in iter_capture(names):
        price = chunk.price_decimals
        size = chunk.size_decimals
        sides = chunk.sides
        side = 0
        for index, (ts, envelope) in enumerate(chunk.items):
            data: Any = envelope.data
            if data is not None and data.U == -1:
                name = symbol or data.s
                try:
                    yield _tick(ts, name, data, price, size)
                except (ValueError, UnicodeDecodeError) as exc:
                    expected = f"prices/sizes with at most {price}/{size} decimals"
                    line = chunk.first_line + index
                    raise DataFormatError(chunk.path, line, None, expected, str(exc)) from None
                continue
            bids = sides[side]
            asks = sides[side + 1]
            side += 2
            bid_levels = tuple(zip(bids[0::2], bids[1::2], strict=True))
            ask_levels = tuple(zip(asks[0::2], asks[1::2], strict=True))
            if data is not None:
                last_symbol = symbol or data.s
                yield BookDelta(
                    ts=ts,
                    symbol=last_symbol,
                    first_update_id=data.U,
                    last_update_id=data.u,
                    prev_update_id=data.pu,
                    bids=bid_levels,
                    asks=ask_levels,
                    exchange_ts=data.E * _NS_PER_MS,
                )
            else:
                yield BookSnapshot(
                    ts=ts,
                    symbol=last_symbol,
                    last_update_id=envelope.lastUpdateId,
                    bids=tuple(sorted(bid_levels, reverse=True)),
                    asks=tuple(sorted(ask_levels)),
                )


def _tick(ts: int, symbol: str, data: Any, price: int, size: int) -> QuoteTick | TradeTick:
    """A trade or bookTicker message as an event (``ValueError`` on a malformed number)."""
    if data.t != -1:
        return TradeTick(
            ts=ts,
            symbol=symbol,
            trade_id=data.t,
            price=to_units(data.p, price),
            size=to_units(data.q, size),
            aggressor=SELL if data.m else BUY,
            exchange_ts=data.T * _NS_PER_MS,
        )
    return QuoteTick(
        ts=ts,
        symbol=symbol,
        update_id=data.u,
        bid_price=to_units(raw_text(data.b), price),
        bid_size=to_units(data.B, size),
        ask_price=to_units(raw_text(data.a), price),
        ask_size=to_units(data.A, size),
        exchange_ts=data.E * _NS_PER_MS,
    )


def read_tdepth(
    path: str | os.PathLike[str], *, price_decimals: int | None = None
) -> Iterator[BookSnapshot | BookDelta]:
    """Read a Binance ``T_DEPTH`` archive CSV (``..._depth_snap`` or ``..._depth_update``).

    Columns ``symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu``.
    Consecutive rows with the same update ids form one event: ``snap`` rows one
    :class:`BookSnapshot`, ``set`` rows one :class:`BookDelta` (``pu`` -> prev_update_id).
    Prices and sizes are ints at the decimals of the file's first row.
    """
    name = os.fspath(path)
    return _TDepthReader(name).events()


_TDEPTH_HEADER = [
    "symbol",
    "timestamp",
    "first_update_id",
    "last_update_id",
    "side",
    "update_type",
    "price",
    "qty",
    "pu",
]


class _TDepthReader:
    def __init__(self, path: str) -> None:
        self.path = path

    def events(self) -> Iterator[BookSnapshot | BookDelta]:
        path = self.path
        try:
            handle = open(path, newline="")  # noqa: SIM115
        except OSError as exc:
            raise DataFormatError(path, None, None, "a readable file", exc.strerror) from None
        with handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if header is None or [h.strip().lower() for h in header] != _TDEPTH_HEADER:
                got = ",".join(header or [])
                raise DataFormatError(
                    path, 1, None, "T_DEPTH header " + ",".join(_TDEPTH_HEADER), got
                )
            decimals: tuple[int, int] | None = None
            key: tuple[str, int, int, str] | None = None
            meta: tuple[str, int, int] = ("", 0, -1)
            bids: list[tuple[int, int]] = []
            asks: list[tuple[int, int]] = []
            for line, row in enumerate(rows, start=2):
                if len(row) != 9:
                    raise DataFormatError(path, line, None, "9 columns", ",".join(row))
                symbol, stamp, first, last, side, kind, price, qty, pu = row
                if decimals is None:
                    decimals = (_decimals(price), _decimals(qty))
                if kind not in ("snap", "set"):
                    raise DataFormatError(path, line, "update_type", "'snap' or 'set'", kind)
                if side not in ("a", "b"):
                    raise DataFormatError(path, line, "side", "'a' or 'b'", side)
                try:
                    ids = (int(stamp), int(first), int(last), int(pu))
                except ValueError:
                    raise DataFormatError(
                        path, line, "timestamp/update ids", "integers", ",".join(row[1:4])
                    ) from None
                level = (
                    self._units(price, decimals[0], line, "price"),
                    self._units(qty, decimals[1], line, "qty"),
                )
                row_key = (symbol, ids[1], ids[2], kind)
                if row_key != key:
                    if key is not None:
                        yield self._event(key, meta, bids, asks)
                    key = row_key
                    meta = (symbol, ids[0], ids[3])
                    bids, asks = [], []
                (bids if side == "b" else asks).append(level)
            if key is not None:
                yield self._event(key, meta, bids, asks)

    def _units(self, text: str, decimals: int, line: int, column: str) -> int:
        try:
            return to_units(text, decimals)
        except ValueError:
            expected = f"an unsigned decimal with at most {decimals} decimals"
            raise DataFormatError(self.path, line, column, expected, text) from None

    @staticmethod
    def _event(
        key: tuple[str, int, int, str],
        meta: tuple[str, int, int],
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
    ) -> BookSnapshot | BookDelta:
        symbol, first, last, kind = key
        ts = meta[1] * _NS_PER_MS
        if kind == "snap":
            return BookSnapshot(
                ts=ts,
                symbol=symbol,
                last_update_id=last,
                bids=tuple(sorted(bids, reverse=True)),
                asks=tuple(sorted(asks)),
                exchange_ts=ts,
            )
        return BookDelta(
            ts=ts,
            symbol=symbol,
            first_update_id=first,
            last_update_id=last,
            prev_update_id=meta[2],
            bids=tuple(bids),
            asks=tuple(asks),
            exchange_ts=ts,
        )


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name the L2 format of ``path`` from its content, or raise :class:`DataFormatError`.

    One of ``binance-capture``, ``binance-tdepth``, ``lobster-message``,
    ``lobster-orderbook``.
    """
    import gzip
    import zlib

    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise DataFormatError(name, None, None, "a readable file", exc.strerror) from None
    if head[:2] == b"\x1f\x8b":
        try:
            head = gzip.decompress(head) if len(head) < 1 << 16 else _inflate_head(head)
        except (OSError, EOFError, zlib.error):
            head = _inflate_head(head)
    first = head.split(b"\n", 1)[0].strip()
    stamp, _, rest = first.partition(b" ")
    if stamp.isdigit() and rest.startswith(b"{"):
        return "binance-capture"
    if first.lower().startswith(b"symbol,timestamp,first_update_id"):
        return "binance-tdepth"
    cells = first.split(b",")
    if len(cells) == 6 and all(_is_number(c) for c in cells):
        return "lobster-message"
    if cells and len(cells) % 4 == 0 and all(_is_number(c) for c in cells):
        return "lobster-orderbook"
    shown = first[:40].decode("utf-8", "replace")
    raise DataFormatError(
        name, 1, None, "a Binance capture, a T_DEPTH CSV or a LOBSTER file", shown
    )


def _inflate_head(data: bytes) -> bytes:
    import zlib

    try:
        return zlib.decompressobj(wbits=31).decompress(data, 1 << 16)
    except zlib.error:
        return b""


def _is_number(cell: bytes) -> bool:
    text = cell.strip().lstrip(b"-")
    return bool(text) and text.replace(b".", b"", 1).isdigit()
