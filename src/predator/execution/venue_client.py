"""The venue-client interface and its in-process implementation, the PaperBroker.

Execution talks to any venue through :class:`VenueClient`; the PaperBroker connects
it to a PaperExchange in the same process and puts the venue's reports on the bus,
where the chaos layer can delay, drop or duplicate them.
"""

from __future__ import annotations

from typing import Protocol

from predator.core.bus import MessageBus
from predator.venue.orders import OrderRequest, VenueReport
from predator.venue.paper_exchange import PaperExchange

__all__ = ["PaperBroker", "VenueClient"]


class VenueClient(Protocol):
    """What execution needs from a venue: send and cancel; reports arrive on the bus."""

    def submit(self, request: OrderRequest) -> None: ...

    def cancel(self, client_order_id: str) -> None: ...


class PaperBroker:
    """Venue client for an in-process :class:`PaperExchange`."""

    def __init__(self, *, bus: MessageBus, exchange: PaperExchange) -> None:
        self._bus = bus
        self.exchange = exchange
        exchange.connect(self._on_report)

    def submit(self, request: OrderRequest) -> None:
        self.exchange.submit(request)

    def cancel(self, client_order_id: str) -> None:
        self.exchange.cancel(client_order_id)

    def _on_report(self, report: VenueReport) -> None:
        self._bus.publish(report)
