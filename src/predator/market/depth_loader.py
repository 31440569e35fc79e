"""Streaming readers for level-2 captures, and the book check against the venue's quotes.

- Binance websocket captures (hftbacktest ``*.jsonl.gz``): :func:`read_binance_capture`
  yields :mod:`predator.market.l2` events; :func:`check_binance_capture` rebuilds the book
  under Binance's sync rules (:class:`~predator.market.book_sync.BookSync`) and compares it
  with every ``bookTicker`` the book reached (rule in :class:`BookCheckReport`).
- Binance ``T_DEPTH`` archive CSVs: :func:`read_tdepth`.
- LOBSTER files: :mod:`predator.market.lobster`.

Nothing is loaded whole: files are read in blocks. Malformed data raises
:class:`~predator.market.errors.DataFormatError` naming file, line and field.
"""

from __future__ import annotations

import csv
import gc
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec

from predator.core.events import Event
from predator.market._binance_depth import (
    CaptureChunk,
    iter_capture,
    raw_text,
    to_units,
    units_reader,
)
from predator.market.book_sync import SPOT, USDM, BookSync
from predator.market.errors import DataFormatError
from predator.market.l2 import BUY, SELL, BookDelta, BookSnapshot, QuoteTick, TradeTick
from predator.market.order_book import OrderBook

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


class BookCheckReport(msgspec.Struct, kw_only=True):
    """What :func:`check_binance_capture` found.

    The comparison rule: after each applied diff the book shows the venue's state as of
    that diff's last update id ``u``. The venue's own best bid/ask as of ``u`` is the
    latest ``bookTicker`` whose update id is ``<= u`` (a bookTicker is pushed on every
    change of the top), *provided* the next bookTicker has an id ``> u`` - so a diff is
    compared once the following ticker has arrived (or the input ended). ``checks``
    counts these comparisons (price and size of both sides); a diff before the first
    bookTicker is not compared.
    """

    files: list[str]
    market: str
    symbol: str
    price_decimals: int
    size_decimals: int
    messages: int = 0
    snapshots: int = 0
    diffs: int = 0
    diffs_applied: int = 0
    diffs_dropped: int = 0
    chain_checked: int = 0
    tickers: int = 0
    tickers_out_of_order: int = 0
    trades: int = 0
    checks: int = 0
    mismatches: int = 0
    unchecked_diffs: int = 0
    gaps: int = 0
    valid_at_end: bool = False
    mismatch_details: list[dict[str, Any]] = msgspec.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


def check_binance_capture(
    paths: Sequence[str | os.PathLike[str]],
    *,
    publish: Callable[[Event], object] | None = None,
    book: OrderBook | None = None,
    max_details: int = 20,
    read_ahead: bool = True,
) -> BookCheckReport:
    """Rebuild the book from captures (in order, one continuing the other) and check it.

    ``publish`` receives :class:`~predator.market.status.MarketDataInvalidated` /
    ``MarketDataRestored`` when a gap breaks the chain / a snapshot resyncs it. The
    rebuilt book is ``book`` (a fresh one when None). Spot or USD-M rules are chosen from
    the first diff (USD-M diffs carry ``pu``). ``read_ahead`` inflates the next block on
    a helper thread while this one is decoded (same result, faster on two cores).
    """
    names = [os.fspath(p) for p in paths]
    checker = _BookChecker(names, publish, book, max_details, read_ahead)
    was_enabled = gc.isenabled()
    gc.disable()  # the decoded blocks are many small containers; collections only cost
    try:
        checker.run()
    finally:
        if was_enabled:
            gc.enable()
    return checker.report


# (update id, (bid price, bid size, ask price, ask size), ticker of record, file, line)
_Pending = tuple[int, tuple[int, int, int, int], Any, str, int]


class _BookChecker:
    """The replay loop of :func:`check_binance_capture` (see :class:`BookCheckReport`)."""

    def __init__(
        self,
        names: list[str],
        publish: Callable[[Event], object] | None,
        book: OrderBook | None,
        max_details: int,
        read_ahead: bool = False,
    ) -> None:
        self.read_ahead = read_ahead
        self.names = names
        self.publish = publish
        self.book = book
        self.max_details = max_details
        self.sync: BookSync | None = None
        self.report = BookCheckReport(
            files=names, market="", symbol="", price_decimals=0, size_decimals=0
        )
        self.read_price: Callable[[str], int] = int
        self.read_size: Callable[[str], int] = int
        self.history: list[Any] = []  # tickers from the one of record for the last diff on
        self.pending: list[_Pending] = []

    def run(self) -> None:
        report = self.report
        history = self.history
        reached = self.reached
        sync = self.sync
        messages = trades = diffs = out_of_order = 0
        last_ticker_u = -1
        for chunk in iter_capture(self.names, read_ahead=self.read_ahead, lean=True):
            sides = chunk.sides
            side = 0
            path = chunk.path
            first_line = chunk.first_line
            messages += len(chunk.items)
            for index, (ts, envelope) in enumerate(chunk.items):
                data: Any = envelope.data
                if data is None:
                    if sync is None:
                        sync = self.start(chunk, None)
                    if sync.snapshot_levels(
                        ts, envelope.lastUpdateId, sides[side], sides[side + 1]
                    ):
                        reached(sync.book.last_update_id, path, first_line + index)
                    side += 2
                elif data.U != -1:
                    diffs += 1
                    if sync is None:
                        sync = self.start(chunk, data)
                    u = data.u
                    if sync.diff_levels(ts, data.U, u, data.pu, sides[side], sides[side + 1]):
                        reached(u, path, first_line + index)
                    side += 2
                elif data.t != -1:
                    trades += 1
                else:
                    u = data.u
                    if u < last_ticker_u:
                        out_of_order += 1
                        continue
                    last_ticker_u = u
                    if self.pending:
                        self.resolve(u, data)
                    history.append(data)
        for entry in self.pending:  # the input ended: the last ticker is the venue's last word
            self.compare(*entry)
        report.messages = messages
        report.trades = trades
        report.diffs = diffs
        report.tickers_out_of_order = out_of_order
        report.tickers = messages - trades - diffs - out_of_order - (sync.snapshots if sync else 0)
        if sync is not None:
            report.snapshots = sync.snapshots
            report.diffs_applied = sync.applied
            report.diffs_dropped = sync.dropped
            report.chain_checked = sync.chain_checked
            report.gaps = sync.gaps
            report.valid_at_end = sync.book.valid

    def start(self, chunk: CaptureChunk, first_diff: Any) -> BookSync:
        """Pick the rules (USD-M diffs carry ``pu``), the symbol and the decimals."""
        if first_diff is None:  # a snapshot first: look for the first diff of the block
            first_diff = next(
                (e.data for _ts, e in chunk.items if e.data is not None and e.data.U != -1), None
            )
        market = USDM if first_diff is not None and first_diff.pu != -1 else SPOT
        symbol = first_diff.s if first_diff is not None and first_diff.s else "UNKNOWN"
        report = self.report
        report.market = market
        report.symbol = symbol
        report.price_decimals = chunk.price_decimals
        report.size_decimals = chunk.size_decimals
        self.read_price = units_reader(chunk.price_decimals, chunk.written_price)
        self.read_size = units_reader(chunk.size_decimals, chunk.written_size)
        book = self.book if self.book is not None else OrderBook(symbol)
        self.book = book
        self.sync = BookSync(book, market, self.publish)
        return self.sync

    def reached(self, u: int, path: str, line: int) -> None:
        """The book reached update ``u``: compare it now, or once the next ticker comes."""
        history = self.history
        i = len(history) - 1
        while i >= 0 and history[i].u > u:
            i -= 1
        if i < 0:
            self.report.unchecked_diffs += 1  # no bookTicker at or before u yet
            return
        book = self.book
        assert book is not None
        bid = book.best_bid()
        ask = book.best_ask()
        top = (
            bid[0] if bid else 0,
            bid[1] if bid else 0,
            ask[0] if ask else 0,
            ask[1] if ask else 0,
        )
        if i < len(history) - 1:
            self.compare(u, top, history[i], path, line)
        else:
            self.pending.append((u, top, history[i], path, line))
        if i > 256:
            del history[:i]

    def resolve(self, u: int, ticker: Any) -> None:
        """A ticker with id ``u`` arrived: pending diffs below it are compared."""
        keep: list[_Pending] = []
        for entry in self.pending:
            if entry[0] < u:
                self.compare(*entry)
            else:  # this ticker is now the latest at or before that diff's id
                keep.append((entry[0], entry[1], ticker, entry[3], entry[4]))
        self.pending = keep

    def compare(
        self, u: int, top: tuple[int, int, int, int], ticker: Any, path: str, line: int
    ) -> None:
        report = self.report
        report.checks += 1
        read_price = self.read_price
        read_size = self.read_size
        try:
            quoted = (
                read_price(raw_text(ticker.b)),
                read_size(ticker.B),
                read_price(raw_text(ticker.a)),
                read_size(ticker.A),
            )
        except (ValueError, UnicodeDecodeError) as exc:
            price = report.price_decimals
            size = report.size_decimals
            expected = f"bookTicker {ticker.u} prices/sizes with {price}/{size} decimals"
            raise DataFormatError(path, None, "b/B/a/A", expected, str(exc)) from None
        if quoted == top:
            return
        report.mismatches += 1
        if len(report.mismatch_details) < self.max_details:
            report.mismatch_details.append(
                {
                    "file": path,
                    "line": line,
                    "update_id": u,
                    "ticker_update_id": ticker.u,
                    "book": list(top),
                    "ticker": list(quoted),
                }
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
