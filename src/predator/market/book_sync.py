"""Binance depth-stream synchronisation: which diff may follow which, and what a gap does.

A local book is only as good as the chain of update ids that built it. :class:`BookSync`
applies Binance's documented rules to a snapshot and the diffs after it, keeps the
:class:`~predator.market.order_book.OrderBook` valid only while the chain is unbroken, and
announces a break (and the resync that heals it) as market-status events on the bus.

Diffs that arrive while there is no usable snapshot are buffered (a bounded window, as a
client does while it fetches the snapshot) and replayed through the rules when it comes.

Spot: drop diffs with ``u <= lastUpdateId``; the first one applied must have
``U <= lastUpdateId + 1 <= u``; each later one ``U == previous u + 1``.
USD-M futures: drop diffs with ``u < lastUpdateId``; the first one applied must have
``U <= lastUpdateId <= u``; each later one ``pu == previous u``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

from predator.core.events import Event
from predator.market.l2 import BookDelta, BookSnapshot
from predator.market.order_book import OrderBook
from predator.market.status import MarketDataInvalidated, MarketDataRestored

__all__ = ["SPOT", "USDM", "BookSync"]

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
