"""Test builders for the order path: real GOOG bars, a paper venue harness, fill events.

``VenueHarness`` is a PaperExchange on a virtual TimeWarp that keeps every report it
sends, so a test plays real bars and reads back exactly what the venue said. Used by
tests and demos only, never by production code.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from itertools import count
from typing import Any, TypeVar

from predator.core.clock import TimeWarp
from predator.core.numbers import from_decimal
from predator.execution.order import OrderFilled
from predator.market.bar import Bar
from predator.market.bar_loader import BarFeed, load_bars
from predator.market.instrument import Instrument
from predator.testkit.data import shared_data_dir
from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel
from predator.venue.orders import (
    Liquidity,
    OrderRequest,
    Side,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
    VenueReport,
)
from predator.venue.paper_exchange import PaperExchange

__all__ = [
    "GOOG_DAILY",
    "VenueHarness",
    "goog_bars",
    "goog_feed",
    "money",
    "order_filled",
]

GOOG_DAILY = "backtesting_py_GOOG_daily_2004-2013.csv"
"""backtesting.py's GOOG daily bars 2004-08-19 .. 2013-03-01 (2,148 bars, prices at 0.01)."""

R = TypeVar("R", bound=VenueReport)


@cache
def goog_feed() -> BarFeed:
    """The real GOOG daily feed from the shared data pack (loaded once per process)."""
    return load_bars(shared_data_dir() / GOOG_DAILY)


@cache
def goog_bars() -> tuple[Bar, ...]:
    """Every GOOG daily bar, in time order."""
    return tuple(goog_feed())


def money(amount: Decimal | str | int, instrument: Instrument) -> int:
    """``amount`` of the quote currency in ``instrument``'s money units, exactly."""
    return from_decimal(Decimal(amount), instrument.money_precision)


class VenueHarness:
    """A :class:`PaperExchange` on a virtual clock, collecting every report it sends.

    >>> venue = VenueHarness(cash="10000")  # doctest: +SKIP
    >>> venue.play(goog_bars()[0]); venue.submit(side=Side.BUY, quantity=10)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        instrument: Instrument | None = None,
        cash: Decimal | str | int = "10000",
        commission: CommissionModel | None = None,
        fill_model: BarFillModel | None = None,
        leverage: Decimal | int = 1,
    ) -> None:
        self.instrument = instrument or goog_feed().instrument
        self.clock = TimeWarp.virtual(goog_bars()[0].ts)
        self.reports: list[VenueReport] = []
        self.initial_cash = money(cash, self.instrument)
        self.exchange = PaperExchange(
            clock=self.clock,
            instruments=[self.instrument],
            cash=self.initial_cash,
            commission=commission or CommissionModel(self.instrument),
            fill_model=fill_model,
            leverage=leverage,
            report=self.reports.append,
        )
        self._ids = count(1)

    def play(self, *bars: Bar | Iterable[Bar]) -> None:
        """Move the clock to each bar's time and show the bar to the venue."""
        for item in bars:
            for bar in [item] if isinstance(item, Bar) else item:
                self.clock.set(bar.ts)
                self.exchange.on_bar(bar)

    def request(self, **fields: Any) -> OrderRequest:
        """An order request for the harness' instrument with a fresh client order id."""
        fields.setdefault("client_order_id", f"C{next(self._ids)}")
        fields.setdefault("symbol", self.instrument.symbol)
        return OrderRequest(**fields)

    def submit(self, **fields: Any) -> OrderRequest:
        """Build a request (see :meth:`request`), send it to the venue and return it."""
        request = self.request(**fields)
        self.exchange.submit(request)
        return request

    def of_type(self, kind: type[R], client_order_id: str | None = None) -> list[R]:
        """Reports of ``kind`` (optionally only for ``client_order_id``), in order."""
        return [
            r
            for r in self.reports
            if isinstance(r, kind)
            and (client_order_id is None or r.client_order_id == client_order_id)
        ]

    def fills(self, client_order_id: str | None = None) -> list[VenueOrderFilled]:
        return self.of_type(VenueOrderFilled, client_order_id)

    def cancels(self, client_order_id: str | None = None) -> list[VenueOrderCanceled]:
        return self.of_type(VenueOrderCanceled, client_order_id)

    def rejections(self, client_order_id: str | None = None) -> list[VenueOrderRejected]:
        return self.of_type(VenueOrderRejected, client_order_id)

    def accepted(self, client_order_id: str | None = None) -> list[VenueOrderAccepted]:
        return self.of_type(VenueOrderAccepted, client_order_id)

    @property
    def position(self) -> int:
        """The venue's signed position in the harness' instrument."""
        return self.exchange.positions[self.instrument.symbol]


_trade_ids = count(1)


def order_filled(
    side: Side,
    quantity: int,
    price: int,
    *,
    fee: int = 0,
    symbol: str = "GOOG",
    ts: int = 0,
    trade_id: str | None = None,
    strategy: str = "test",
) -> OrderFilled:
    """An :class:`OrderFilled` as execution publishes it (fresh trade id by default)."""
    trade_id = trade_id or f"T{next(_trade_ids)}"
    return OrderFilled(
        ts=ts,
        client_order_id=f"C-{trade_id}",
        strategy=strategy,
        trade_id=trade_id,
        symbol=symbol,
        side=side,
        price=price,
        quantity=quantity,
        fee=fee,
        liquidity=Liquidity.TAKER,
        leaves_quantity=0,
    )
