"""The paper venue: order vocabulary, fill models, fees, the bar-mode PaperExchange and
the L2PaperExchange (replayed order books, queue positions, latency).

It behaves like a real exchange (its own account, reports over the bus) so paper
results can be trusted and reconciled.
"""

from predator.venue.dead_mans_switch import DeadMansSwitch
from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel, FillMode
from predator.venue.l2_exchange import L2PaperExchange, MarketData
from predator.venue.l2_orders import L2Rules, OrderState, OrderStatus
from predator.venue.latency import (
    ConstantDelay,
    LatencyModel,
    LognormalDelay,
    RecordedDelay,
)
from predator.venue.orders import (
    Liquidity,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueAmendRejected,
    VenueOrderAccepted,
    VenueOrderAmended,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
    VenueReport,
)
from predator.venue.paper_exchange import PaperExchange
from predator.venue.queue_model import (
    ProbQueue,
    QueueModel,
    QueuePosition,
    RiskAverseQueue,
    log_queue,
    power_queue,
)

__all__ = [
    "BarFillModel",
    "CommissionModel",
    "ConstantDelay",
    "DeadMansSwitch",
    "FillMode",
    "L2PaperExchange",
    "L2Rules",
    "LatencyModel",
    "Liquidity",
    "LognormalDelay",
    "MarketData",
    "OrderRequest",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "PaperExchange",
    "ProbQueue",
    "QueueModel",
    "QueuePosition",
    "RecordedDelay",
    "RejectReason",
    "RiskAverseQueue",
    "Side",
    "TimeInForce",
    "VenueAmendRejected",
    "VenueOrderAccepted",
    "VenueOrderAmended",
    "VenueOrderCanceled",
    "VenueOrderFilled",
    "VenueOrderRejected",
    "VenueReport",
    "log_queue",
    "power_queue",
]
