"""Execution: the order state machine, the ExecutionEngine and venue clients.

Risk-approved requests become orders here; venue reports become journaled facts.
"""

from predator.execution.execution_engine import ExecuteOrder, ExecutionEngine
from predator.execution.heartbeat import (
    CroHeartbeat,
    ExecutionHalted,
    ExecutionResumed,
    ResumeRefused,
)
from predator.execution.order import (
    FillReversed,
    InvalidTransition,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
)
from predator.execution.venue_client import PaperBroker, VenueClient

__all__ = [
    "CroHeartbeat",
    "ExecuteOrder",
    "ExecutionEngine",
    "ExecutionHalted",
    "ExecutionResumed",
    "FillReversed",
    "InvalidTransition",
    "Order",
    "OrderAccepted",
    "OrderCanceled",
    "OrderEvent",
    "OrderFilled",
    "OrderRejected",
    "OrderStatus",
    "OrderSubmitted",
    "PaperBroker",
    "ResumeRefused",
    "VenueClient",
]
