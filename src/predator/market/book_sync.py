"""Binance depth-stream synchronisation: which diff may follow which, and what a gap does.

A local book is only as good as the chain of update ids that built it. :class:`BookSync`
applies Binance's documented rules to a snapshot and the diffs after it, keeps the
:class:`~predator.market.order_book.OrderBook` valid only while the chain is unbroken, and
announces a break (and the resync that heals it) as market-status events on the bus.
:func:`check_binance_capture` replays captures through it and checks the rebuilt book
against the venue's own best bid/ask (``bookTicker``).

Diffs that arrive while there is no usable snapshot are buffered (a bounded window, as a
client does while it fetches the snapshot) and replayed through the rules when it comes.

Spot: drop diffs with ``u <= lastUpdateId``; the first one applied must have
``U <= lastUpdateId + 1 <= u``; each later one ``U == previous u + 1``.
USD-M futures: drop diffs with ``u < lastUpdateId``; the first one applied must have
``U <= lastUpdateId <= u``; each later one ``pu == previous u``.
"""

from __future__ import annotations

import gc
import os
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec

from predator.core.events import Event
from predator.market._binance_depth import raw_text, units_reader
from predator.market._check_blocks import CheckBlock, iter_check_blocks
from predator.market.errors import DataFormatError
from predator.market.l2 import BookDelta, BookSnapshot
from predator.market.order_book import OrderBook
from predator.market.status import MarketDataInvalidated, MarketDataRestored

__all__ = ["SPOT", "USDM", "BookCheckReport", "BookSync", "check_binance_capture"]

SPOT: Final = "spot"
"""Binance spot rules (``U == previous u + 1``)."""
USDM: Final = "usdm"
"""Binance USD-M futures rules (``pu == previous u``)."""

_AWAIT_SNAPSHOT = 0
_AWAIT_FIRST = 1
_SYNCED = 2


class BookSync:
    """Feeds one :class:`OrderBook` from a snapshot and diffs under Binance's sequence rules.

    ``publish`` (a bus's publish, or any callable) receives :class:`MarketDataInvalidated`
    when a gap breaks the chain and :class:`MarketDataRestored` when a later snapshot and
    a diff that joins it make the book trustworthy again. Counters: ``applied`` diffs,
    ``dropped`` diffs (before a snapshot, already covered, or while invalid), ``gaps``,
    ``chain_checked`` (diffs whose link to the previous one was checked: ``U == u+1``
    on spot, ``pu == u`` on USD-M) and ``snapshots``.

    The flat-level entry points (:meth:`snapshot_levels`, :meth:`diff_levels`) take
    ``[price, size, price, size, ...]`` lists; the event ones take l2 events.
    """

    __slots__ = (
        "_broken",
        "_buffer",
        "_publish",
        "_state",
        "applied",
        "book",
        "chain_checked",
        "dropped",
        "gaps",
        "market",
        "snapshots",
    )

    def __init__(
        self,
        book: OrderBook,
        market: str = SPOT,
        publish: Callable[[Event], object] | None = None,
        buffer: int = 10_000,
    ) -> None:
        if market not in (SPOT, USDM):
            raise ValueError(f"market must be {SPOT!r} or {USDM!r}, got {market!r}")
        self.book = book
        self.market = market
        self._publish = publish
        self._state = _AWAIT_SNAPSHOT
        self._broken = False
        # Diffs seen while awaiting a snapshot: (ts, U, u, pu, bids, asks) or a BookDelta.
        self._buffer: deque[tuple[int, int, int, int, Sequence[int], Sequence[int]] | BookDelta]
        self._buffer = deque(maxlen=buffer)
        self.applied = 0
        self.dropped = 0
        self.gaps = 0
        self.chain_checked = 0
        self.snapshots = 0

    @property
    def synced(self) -> bool:
        """True while diffs join the book's chain (the book is valid)."""
        return self._state != _AWAIT_SNAPSHOT

    # -- events --------------------------------------------------------------------------
    def apply_snapshot(self, snapshot: BookSnapshot) -> int:
        """Load ``snapshot`` (a resync when the book was invalid), then the buffered diffs.

        Returns how many buffered diffs were applied on top of it.
        """
        self.book.load(snapshot.bids, snapshot.asks, snapshot.last_update_id)
        self._loaded(snapshot.ts)
        return self._replay()

    def apply_delta(self, delta: BookDelta) -> bool:
        """Apply ``delta`` if the rules allow it; False when it was dropped or broke the chain."""
        if self._state == _AWAIT_SNAPSHOT:
            self._buffer.append(delta)
            return False
        if not self._admit(
            delta.ts, delta.first_update_id, delta.last_update_id, delta.prev_update_id
        ):
            return False
        self.book.apply_delta(delta)
        return True

    # -- flat levels (the fast replay path) ----------------------------------------------
    def snapshot_levels(
        self, ts: int, last_update_id: int, bids: Sequence[int], asks: Sequence[int]
    ) -> int:
        """Like :meth:`apply_snapshot` with flat ``[price, size, ...]`` level lists."""
        self.book.load(
            zip(bids[0::2], bids[1::2], strict=True),
            zip(asks[0::2], asks[1::2], strict=True),
            last_update_id,
        )
        self._loaded(ts)
        return self._replay()

    def diff_levels(
        self,
        ts: int,
        first_id: int,
        last_id: int,
        prev_id: int,
        bids: Sequence[int],
        asks: Sequence[int],
    ) -> bool:
        """Like :meth:`apply_delta` with flat ``[price, size, ...]`` level lists."""
        if self._state == _AWAIT_SNAPSHOT:
            self._buffer.append((ts, first_id, last_id, prev_id, bids, asks))
            return False
        if not self._admit(ts, first_id, last_id, prev_id):
            return False
        book = self.book
        book.update_flat(bids, asks)
        book.last_update_id = last_id
        return True

    def _replay(self) -> int:
        """Apply the diffs buffered while awaiting the snapshot; how many joined the book."""
        applied = 0
        buffered = self._buffer
        while buffered and self._state != _AWAIT_SNAPSHOT:
            item = buffered.popleft()
            if isinstance(item, BookDelta):
                applied += self.apply_delta(item)
            else:
                applied += self.diff_levels(*item)
        return applied  # after a gap inside the buffer, the rest waits for a snapshot

    # -- rules ---------------------------------------------------------------------------
    def _loaded(self, ts: int) -> None:
        self.snapshots += 1
        self._state = _AWAIT_FIRST
        if self._broken:  # a resync heals a gap; the first snapshot of a feed is no news
            self._broken = False
            self._announce(MarketDataRestored(ts=ts, symbol=self.book.symbol))

    def _admit(self, ts: int, first_id: int, last_id: int, prev_id: int) -> bool:
        state = self._state
        if state == _SYNCED:
            previous = self.book.last_update_id
            if (prev_id == previous) if self.market == USDM else (first_id == previous + 1):
                self.chain_checked += 1
                self.applied += 1
                return True
            if self.market == USDM:
                why = f"pu {prev_id} != previous u {previous}"
            else:
                why = f"U {first_id} != previous u {previous} + 1"
            return self._gap(ts, f"depth gap after update {previous}: {why}")
        snapshot_id = self.book.last_update_id
        if self.market == USDM:
            if last_id < snapshot_id:
                self.dropped += 1
                return False
            joins = first_id <= snapshot_id <= last_id
        else:
            if last_id <= snapshot_id:
                self.dropped += 1
                return False
            joins = first_id <= snapshot_id + 1 <= last_id
        if not joins:
            return self._gap(
                ts,
                f"first diff after snapshot {snapshot_id} does not join it "
                f"(U {first_id}, u {last_id})",
            )
        self._state = _SYNCED
        self.applied += 1
        return True

    def _gap(self, ts: int, reason: str) -> bool:
        self.gaps += 1
        self.dropped += 1
        self._state = _AWAIT_SNAPSHOT
        self._broken = True
        self.book.invalidate(reason)
        self._announce(MarketDataInvalidated(ts=ts, symbol=self.book.symbol, reason=reason))
        return False

    def _announce(self, event: Event) -> None:
        if self._publish is not None:
            self._publish(event)


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
        # Tickers from the one of record for the last diff on, and their (non-decreasing) ids.
        self.history: list[Any] = []
        self.history_ids: list[int] = []
        self.pending: list[_Pending] = []

    def run(self) -> None:
        report = self.report
        reached = self.reached
        add_tickers = self.add_tickers
        sync = self.sync
        messages = trades = diffs = out_of_order = 0
        for block in iter_check_blocks(self.names, read_ahead=self.read_ahead):
            path = block.path
            first_line = block.first_line
            messages += block.lines
            trades += block.trades
            out_of_order += block.out_of_order
            tickers = block.tickers
            ticker_ids = block.ticker_ids
            kept = 0  # tickers of the block already added to the history
            for kind, index, ts, first_id, u, prev_id, bids, asks, before in block.records:
                if before > kept:
                    add_tickers(tickers, ticker_ids, kept, before)
                    kept = before
                if sync is None:
                    sync = self.start(block)
                if kind == 0:
                    if sync.snapshot_levels(ts, u, bids, asks):
                        reached(sync.book.last_update_id, path, first_line + index)
                else:
                    diffs += 1
                    if sync.diff_levels(ts, first_id, u, prev_id, bids, asks):
                        reached(u, path, first_line + index)
            if kept < len(ticker_ids):
                add_tickers(tickers, ticker_ids, kept, len(ticker_ids))
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

    def start(self, block: CheckBlock) -> BookSync:
        """Pick the rules (USD-M diffs carry ``pu``), the symbol and the decimals from the
        first diff of the block where the feed starts."""
        has_diff = block.first_diff_symbol is not None
        market = USDM if has_diff and block.first_diff_pu != -1 else SPOT
        symbol = block.first_diff_symbol or "UNKNOWN"
        report = self.report
        report.market = market
        report.symbol = symbol
        report.price_decimals = block.price_decimals
        report.size_decimals = block.size_decimals
        self.read_price = units_reader(block.price_decimals, block.written_price)
        self.read_size = units_reader(block.size_decimals, block.written_size)
        book = self.book if self.book is not None else OrderBook(symbol)
        self.book = book
        self.sync = BookSync(book, market, self.publish)
        return self.sync

    def add_tickers(self, tickers: list[Any], ids: list[int], lo: int, hi: int) -> None:
        """Tickers ``lo:hi`` of a block arrived (ids never go back: see iter_check_blocks)."""
        history = self.history
        history_ids = self.history_ids
        while self.pending and lo < hi:  # each may settle diffs waiting for a later ticker
            self.resolve(ids[lo], tickers[lo])
            history.append(tickers[lo])
            history_ids.append(ids[lo])
            lo += 1
        history += tickers[lo:hi]
        history_ids += ids[lo:hi]

    def reached(self, u: int, path: str, line: int) -> None:
        """The book reached update ``u``: compare it now, or once the next ticker comes."""
        history_ids = self.history_ids
        i = bisect_right(history_ids, u) - 1  # the latest ticker at or before u
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
        history = self.history
        if i < len(history) - 1:
            self.compare(u, top, history[i], path, line)
        else:
            self.pending.append((u, top, history[i], path, line))
        if i > 256:
            del history[:i]
            del history_ids[:i]

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
        if type(ticker) is tuple:  # read by the compiled scanner: (u, b, B, a, A) ints
            ticker_id: int = ticker[0]
            quoted: tuple[int, ...] = ticker[1:]
        else:
            ticker_id = ticker.u
            quoted = self.quoted(ticker, path)
        if quoted == top:
            return
        report.mismatches += 1
        if len(report.mismatch_details) < self.max_details:
            report.mismatch_details.append(
                {
                    "file": path,
                    "line": line,
                    "update_id": u,
                    "ticker_update_id": ticker_id,
                    "book": list(top),
                    "ticker": list(quoted),
                }
            )

    def quoted(self, ticker: Any, path: str) -> tuple[int, ...]:
        """A decoded bookTicker's ``(bid, bid size, ask, ask size)`` as ints."""
        read_price = self.read_price
        read_size = self.read_size
        try:
            return (
                read_price(raw_text(ticker.b)),
                read_size(ticker.B),
                read_price(raw_text(ticker.a)),
                read_size(ticker.A),
            )
        except (ValueError, UnicodeDecodeError) as exc:
            price = self.report.price_decimals
            size = self.report.size_decimals
            expected = f"bookTicker {ticker.u} prices/sizes with {price}/{size} decimals"
            raise DataFormatError(path, None, "b/B/a/A", expected, str(exc)) from None
