"""LOBSTER files: order-level messages and the N-level order book after each of them.

A message file row is ``time,type,order_id,size,price,direction`` (time in seconds after
midnight, price in 1/10000 dollars, direction 1 = buy order, -1 = sell order); row ``i``
of the order book file is the book after message ``i``: N levels of
``ask_price,ask_size,bid_price,bid_size``. :class:`LobsterReplay` plays the messages
through an :class:`~predator.market.order_book.OrderLevelBook` and checks every row.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator

import msgspec

from predator.market._binance_depth import to_units
from predator.market.errors import DataFormatError
from predator.market.l2 import BUY, LOBSTER_ACTIONS, SELL, Level, OrderBookEvent
from predator.market.order_book import OrderLevelBook

__all__ = ["LobsterReplay", "LobsterStep", "read_lobster_messages", "read_lobster_orderbook"]

_DUMMY_PRICES = (9_999_999_999, -9_999_999_999)  # LOBSTER's filler for empty levels
_SYMBOL = re.compile(r"(?:^|_)([A-Z][A-Z0-9.]*)_\d{4}-\d{2}-\d{2}")


def _symbol_of(path: str) -> str:
    found = _SYMBOL.search(os.path.basename(path))
    return found.group(1) if found else ""


def _open(path: str) -> Iterator[tuple[int, list[str]]]:
    try:
        handle = open(path, newline="")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise DataFormatError(path, None, None, "a readable file", exc.strerror) from None
    with handle:
        yield from enumerate(csv.reader(handle), start=1)


def read_lobster_messages(
    path: str | os.PathLike[str], *, symbol: str | None = None
) -> Iterator[OrderBookEvent]:
    """Yield a LOBSTER message file's rows as :class:`OrderBookEvent` (streaming).

    ``ts`` is ns after midnight of the trading day (exchange local time, as LOBSTER
    writes it); ``symbol`` defaults to the one in the file name (``AAPL_2012-06-21_...``).
    """
    name = os.fspath(path)
    symbol = symbol or _symbol_of(name)
    for line, row in _open(name):
        if len(row) != 6:
            raise DataFormatError(name, line, None, "6 columns (LOBSTER message)", ",".join(row))
        try:
            ts = to_units(row[0], 9)
        except ValueError:
            raise DataFormatError(name, line, "time", "seconds after midnight", row[0]) from None
        try:
            kind, order_id, size, price, direction = (int(cell) for cell in row[1:])
        except ValueError:
            raise DataFormatError(
                name, line, "type/order_id/size/price/direction", "integers", ",".join(row[1:])
            ) from None
        if not 1 <= kind <= len(LOBSTER_ACTIONS):
            raise DataFormatError(name, line, "type", "an event type 1..7", row[1])
        if direction not in (1, -1):
            raise DataFormatError(name, line, "direction", "1 (buy) or -1 (sell)", row[5])
        yield OrderBookEvent(
            ts=ts,
            symbol=symbol,
            order_id=order_id,
            action=LOBSTER_ACTIONS[kind - 1],
            side=BUY if direction == 1 else SELL,
            price=price,
            size=size,
        )


def read_lobster_orderbook(
    path: str | os.PathLike[str],
) -> Iterator[tuple[list[Level], list[Level]]]:
    """Yield each order book row as ``(bids, asks)``, best first, empty levels left out."""
    name = os.fspath(path)
    for line, row in _open(name):
        if not row or len(row) % 4:
            expected = "4 columns per level (LOBSTER order book)"
            raise DataFormatError(name, line, None, expected, ",".join(row)[:40])
        try:
            cells = [int(cell) for cell in row]
        except ValueError:
            raise DataFormatError(name, line, None, "integers", ",".join(row)[:40]) from None
        asks = [
            (cells[i], cells[i + 1])
            for i in range(0, len(cells), 4)
            if cells[i + 1] > 0 and cells[i] not in _DUMMY_PRICES
        ]
        bids = [
            (cells[i + 2], cells[i + 3])
            for i in range(0, len(cells), 4)
            if cells[i + 3] > 0 and cells[i + 2] not in _DUMMY_PRICES
        ]
        yield bids, asks


class LobsterStep(msgspec.Struct, frozen=True):
    """One message replayed: the book's levels vs. the file's row after it.

    ``in_window`` says whether the book agreed with the row at every price inside the
    window the previous row showed (the levels the messages speak about); ``exact``
    whether it agreed with the whole row before anything was taken from the row.
    """

    index: int
    event: OrderBookEvent
    in_window: bool
    exact: bool
    adopted: int


class LobsterReplay:
    """Play a LOBSTER message file through an :class:`OrderLevelBook`, row by row.

    The book starts from order book row 0 (the state after message 0, one anonymous
    order per level). A LOBSTER file with N levels only carries the messages that touch
    those N levels, so a level that enters the window from deeper down (after the levels
    above it were taken) cannot come from the messages: the replay takes it from the row
    and counts it in ``adopted``. Everything inside the previous row's window must match
    the new row exactly: that is what :attr:`LobsterStep.in_window` checks.
    """

    def __init__(
        self,
        message_path: str | os.PathLike[str],
        orderbook_path: str | os.PathLike[str],
        *,
        symbol: str | None = None,
    ) -> None:
        self.message_path = os.fspath(message_path)
        self.orderbook_path = os.fspath(orderbook_path)
        self.book = OrderLevelBook(symbol or _symbol_of(self.message_path))
        self.rows = 0
        self.in_window = 0
        self.exact = 0
        self.adopted = 0

    def __iter__(self) -> Iterator[LobsterStep]:
        messages = read_lobster_messages(self.message_path, symbol=self.book.symbol)
        rows = read_lobster_orderbook(self.orderbook_path)
        first = next(rows, None)
        if first is None:
            raise DataFormatError(self.orderbook_path, 1, None, "at least one order book row")
        if next(messages, None) is None:
            raise DataFormatError(self.message_path, 1, None, "at least one message")
        bids, asks = first
        depth = max(len(bids), len(asks))
        self.book.seed(bids, asks)
        self.rows = self.in_window = self.exact = 1
        window = (bids, asks)
        for index, (event, row) in enumerate(zip(messages, rows, strict=False), start=1):
            self.book.apply(event)
            step = self._check(index, event, window, row, depth)
            window = row
            yield step
        if next(messages, None) is not None or next(rows, None) is not None:
            raise DataFormatError(
                self.orderbook_path, self.rows + 1, None, "one order book row per message"
            )

    def run(self) -> LobsterReplay:
        """Replay everything (for the counters); returns self."""
        for _step in self:
            pass
        return self

    def _check(
        self,
        index: int,
        event: OrderBookEvent,
        window: tuple[list[Level], list[Level]],
        row: tuple[list[Level], list[Level]],
        depth: int,
    ) -> LobsterStep:
        book = self.book
        got_bids, got_asks = book.bids(depth), book.asks(depth)
        exact = (got_bids, got_asks) == row
        # Inside the previous window: bids at or above its last bid, asks at or below.
        floor = window[0][-1][0] if len(window[0]) == depth else None
        ceiling = window[1][-1][0] if len(window[1]) == depth else None
        in_window = [lv for lv in got_bids if floor is None or lv[0] >= floor] == [
            lv for lv in row[0] if floor is None or lv[0] >= floor
        ] and [lv for lv in got_asks if ceiling is None or lv[0] <= ceiling] == [
            lv for lv in row[1] if ceiling is None or lv[0] <= ceiling
        ]
        adopted = 0
        if not exact:
            if floor is not None:
                adopted += book.replace_beyond(BUY, floor, row[0])
            if ceiling is not None:
                adopted += book.replace_beyond(SELL, ceiling, row[1])
        self.rows += 1
        self.exact += exact
        self.in_window += in_window
        self.adopted += adopted
        return LobsterStep(
            index=index, event=event, in_window=in_window, exact=exact, adopted=adopted
        )
