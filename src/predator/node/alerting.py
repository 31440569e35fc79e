"""Turns the kernel's safety facts into operator alerts (every halt is explained).

Kill-switch trips, breaker openings, strategy failures, execution halts, trading-state
halts and protection locks each raise an alert through the AlertDispatcher, which
journals it, throttles and deduplicates, and sends it to its channels.
"""

from __future__ import annotations

from collections.abc import Sequence

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.execution.heartbeat import ExecutionHalted
from predator.execution.order import FillReversed
from predator.notify.alerts import (
    AlertChannel,
    AlertDispatcher,
    MemoryChannel,
    Severity,
    WebhookChannel,
)
from predator.risk.circuit_breaker import BreakerState, BreakerStateChanged
from predator.risk.config import AlertsSection
from predator.risk.emergency_stop import KillSwitchTripped
from predator.risk.protections import ProtectionLocked
from predator.risk.risk_engine import TradingState, TradingStateChanged
from predator.strategy.runner import StrategyFailed

__all__ = ["KernelAlerts"]


class KernelAlerts:
    """Subscribes to the safety events of a kernel and raises alerts for them."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        clock: Clock,
        config: AlertsSection,
        extra_channels: Sequence[AlertChannel] = (),
    ) -> None:
        self.memory = MemoryChannel()
        channels: list[AlertChannel] = [self.memory, *extra_channels]
        if config.webhook_url:
            channels.append(WebhookChannel(config.webhook_url))
        self.dispatcher = AlertDispatcher(
            clock,
            channels,
            throttle_per_minute=config.throttle_per_minute,
            dedup_window_ns=config.dedup_ns,
            publish=bus.publish,
        )
        bus.subscribe(KillSwitchTripped, self._kill)
        bus.subscribe(BreakerStateChanged, self._breaker)
        bus.subscribe(StrategyFailed, self._strategy_failed)
        bus.subscribe(ExecutionHalted, self._execution_halted)
        bus.subscribe(TradingStateChanged, self._trading_state)
        bus.subscribe(ProtectionLocked, self._protection)
        bus.subscribe(FillReversed, self._fill_reversed)

    def counts(self) -> dict[str, int]:
        """Alerts raised so far, by severity label."""
        counts: dict[str, int] = {}
        for alert in self.memory.alerts:
            counts[alert.severity.label] = counts.get(alert.severity.label, 0) + 1
        return counts

    def _kill(self, event: KillSwitchTripped) -> None:
        self.dispatcher.dispatch(
            severity=Severity.CRITICAL,
            kind="kill_switch",
            title=f"kill switch tripped: {event.scope}",
            message=event.reason,
            source=event.actor,
            fields={"trigger": event.trigger, "flatten": event.flatten},
        )

    def _fill_reversed(self, event: FillReversed) -> None:
        self.dispatcher.dispatch(
            severity=Severity.CRITICAL,
            kind="fill_reversed",
            title=f"fill reversed: {event.trade_id}",
            message=event.reason,
            source="reconciliation",
            fields={"client_order_id": event.client_order_id, "quantity": event.quantity},
        )

    def _breaker(self, event: BreakerStateChanged) -> None:
        if event.state is BreakerState.OPEN:
            self.dispatcher.dispatch(
                severity=Severity.ERROR,
                kind="breaker",
                title=f"circuit breaker open: {event.scope}",
                message=event.reason,
                source="risk",
            )

    def _strategy_failed(self, event: StrategyFailed) -> None:
        self.dispatcher.dispatch(
            severity=Severity.ERROR,
            kind="strategy_failed",
            title=f"strategy stopped: {event.strategy}",
            message=f"{event.error} in {event.where}",
            source=event.location,
        )

    def _execution_halted(self, event: ExecutionHalted) -> None:
        self.dispatcher.dispatch(
            severity=Severity.CRITICAL,
            kind="execution_halted",
            title="execution halted",
            message=event.reason,
            source="execution",
        )

    def _trading_state(self, event: TradingStateChanged) -> None:
        if event.state is not TradingState.ACTIVE:
            self.dispatcher.dispatch(
                severity=Severity.CRITICAL
                if event.state is TradingState.HALTED
                else Severity.WARNING,
                kind="trading_state",
                title=f"{event.scope} {event.state.value}",
                message=event.reason,
                source=event.actor,
            )

    def _protection(self, event: ProtectionLocked) -> None:
        self.dispatcher.dispatch(
            severity=Severity.WARNING,
            kind="protection",
            title=f"protection {event.name} locked trading",
            message=event.reason,
            source="risk",
        )
