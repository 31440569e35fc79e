"""Notifications: alerts to the operator through console, webhook and in-memory channels.

The :class:`AlertDispatcher` sits on top of the stack and only observes: it throttles,
deduplicates and fans out alerts, and never raises a delivery failure into trading code.
"""

from predator.notify.alerts import (
    Alert,
    AlertAcknowledged,
    AlertChannel,
    AlertDeliveryFailed,
    AlertDispatcher,
    AlertRaised,
    AlertRecord,
    ConsoleChannel,
    DispatchResult,
    DispatchStatus,
    MemoryChannel,
    Severity,
    UnknownAlert,
    WebhookChannel,
)

__all__ = [
    "Alert",
    "AlertAcknowledged",
    "AlertChannel",
    "AlertDeliveryFailed",
    "AlertDispatcher",
    "AlertRaised",
    "AlertRecord",
    "ConsoleChannel",
    "DispatchResult",
    "DispatchStatus",
    "MemoryChannel",
    "Severity",
    "UnknownAlert",
    "WebhookChannel",
]
