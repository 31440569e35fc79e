"""The kernel every other package builds on: clocks, scheduler, bus, events, numbers.

It imports nothing else from Predator. Components receive a clock, the bus, an RNG
stream and a logger from here; see ARCHITECTURE.md sections 1 and 6 for the rules.
"""

from predator.core.bus import Interceptor, MessageBus, NoHandler
from predator.core.clock import NS_PER_SECOND, Clock, TimeWarp, WallClock, WallSource, iso_utc
from predator.core.errors import KernelFault
from predator.core.events import Command, Event, Message
from predator.core.ids import IdGenerator
from predator.core.log import (
    JsonFormatter,
    KeyValueFormatter,
    StructuredLogger,
    configure_logging,
    get_logger,
)
from predator.core.numbers import (
    Money,
    NotRepresentable,
    Price,
    Quantity,
    decimals_of,
    from_decimal,
    parse_fixed,
    rescale,
    to_decimal,
)
from predator.core.rng import RngStreams
from predator.core.scheduler import ScenarioClock, ScheduledCall

__all__ = [
    "NS_PER_SECOND",
    "Clock",
    "Command",
    "Event",
    "IdGenerator",
    "Interceptor",
    "JsonFormatter",
    "KernelFault",
    "KeyValueFormatter",
    "Message",
    "MessageBus",
    "Money",
    "NoHandler",
    "NotRepresentable",
    "Price",
    "Quantity",
    "RngStreams",
    "ScenarioClock",
    "ScheduledCall",
    "StructuredLogger",
    "TimeWarp",
    "WallClock",
    "WallSource",
    "configure_logging",
    "decimals_of",
    "from_decimal",
    "get_logger",
    "iso_utc",
    "parse_fixed",
    "rescale",
    "to_decimal",
]
