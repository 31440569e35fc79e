"""The paper venue: order vocabulary, fill models, fees and the PaperExchange.

It behaves like a real exchange (its own account, reports over the bus) so paper
results can be trusted and reconciled.
"""

from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel, FillMode
from predator.venue.orders import (
    Liquidity,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
    VenueReport,
)
from predator.venue.paper_exchange import PaperExchange

__all__ = [
    "BarFillModel",
    "CommissionModel",
    "FillMode",
    "Liquidity",
    "OrderRequest",
    "OrderType",
    "PaperExchange",
    "RejectReason",
    "Side",
    "TimeInForce",
    "VenueOrderAccepted",
    "VenueOrderCanceled",
    "VenueOrderFilled",
    "VenueOrderRejected",
    "VenueReport",
]
