"""A workaround, on the campaign's side, for a re-entrancy bug of ``PaperExchange``.

``PaperExchange._match`` walks a copy of its resting orders and removes each one it
fills. A fill's event cascade can cancel *another* resting order of that copy (the fill
closes a losing trade, the strategy's breaker trips for the third time, the kill switch
cancels the strategy's other open order); the walk then reaches the canceled order and
``list.remove`` raises ``ValueError``, killing the node. Found by the first campaigns
(seed 1, 5 days, the example risk profile). Until the venue is fixed, campaigns run on
:class:`GuardedPaperExchange`, which skips orders that left the book during the walk.
"""

from __future__ import annotations

from predator.core.clock import TimeWarp
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel
from predator.venue.orders import TimeInForce
from predator.venue.paper_exchange import PaperExchange

__all__ = ["GuardedPaperExchange", "build_exchange"]


class GuardedPaperExchange(PaperExchange):
    """``PaperExchange`` whose matching walk skips orders canceled during the walk."""

    def _match(
        self, bar: Bar, arrived_on_bar: int | None = None, only: set[str] | None = None
    ) -> None:
        symbol = bar.symbol
        for resting in list(self._orders):
            if resting.request.symbol != symbol:
                continue
            if only is not None and resting.request.client_order_id not in only:
                continue
            if arrived_on_bar is not None and resting.arrival_bar != arrived_on_bar:
                continue
            if not any(order is resting for order in self._orders):
                continue  # canceled by an earlier fill's cascade: it is no longer resting
            price, liquidity = self.fill_model.trigger(resting, bar)
            if price is None:
                if resting.request.tif is TimeInForce.IOC:
                    self._orders.remove(resting)
                    self._cancelled(resting, "expired", "IOC order could not fill on its bar")
                continue
            self._orders.remove(resting)
            self._execute(resting, price, liquidity)


def build_exchange(
    *,
    instrument: Instrument,
    start_ts: int,
    accounts: list[tuple[str, int]],
    commission: CommissionModel,
    fill_model: BarFillModel,
    guarded: bool = True,
) -> PaperExchange:
    """The venue a campaign kernel trades on, with one sub-account per ``(name, cash)``
    (exactly what the kernel opens itself); ``guarded=False`` gives the plain venue."""
    cls = GuardedPaperExchange if guarded else PaperExchange
    exchange = cls(
        clock=TimeWarp.virtual(start_ts),
        instruments=[instrument],
        cash=0,
        commission=commission,
        fill_model=fill_model,
    )
    for name, cash in accounts:
        exchange.open_account(name, cash)
    return exchange
