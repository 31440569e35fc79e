"""Governance wiring: an :class:`~predator.strategy.allocator.Allocator` on a kernel.

:func:`attach_allocator` binds the allocator to the kernel's pools, venue and bus through a
:class:`~predator.portfolio.transfers.CapitalTransfers` service and runs it every
``interval_ns`` of kernel time on ``kernel.scheduler``. :func:`attach_from_config` does the
same from a plain settings mapping, the form a ``BacktestConfig`` field would carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from predator.core.scheduler import ScheduledCall
from predator.ledger.journal import JournalRecord
from predator.portfolio.transfers import CapitalTransfers
from predator.strategy.allocator import DAY_NS, Allocator, AllocatorConfig

if TYPE_CHECKING:
    from predator.node.kernel import Kernel

__all__ = ["Governance", "GovernanceConfig", "attach_allocator", "attach_from_config"]


class GovernanceConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Governance settings: how often the allocator runs and how it allocates.

    ``interval_ns`` [1 day of kernel time]: time between two allocator rounds;
    ``allocator``: the :class:`AllocatorConfig` fields (its defaults when empty).
    """

    interval_ns: int = DAY_NS
    allocator: AllocatorConfig = AllocatorConfig()


class Governance:
    """An allocator attached to a kernel: its transfer service and its timer."""

    def __init__(
        self, kernel: Kernel, allocator: Allocator, transfers: CapitalTransfers, interval_ns: int
    ) -> None:
        self.kernel = kernel
        self.allocator = allocator
        self.transfers = transfers
        self.interval_ns = interval_ns
        self.call: ScheduledCall | None = None
        self.stopped = False

    def _tick(self) -> None:
        if self.stopped:
            return
        self.allocator.run_round()
        self.call = self.kernel.scheduler.schedule_in(self.interval_ns, self._tick)

    def stop(self) -> None:
        """No more rounds (a pending one is cancelled)."""
        self.stopped = True
        if self.call is not None:
            self.kernel.scheduler.cancel(self.call)

    def restore(self, records: Sequence[JournalRecord], *, not_before: int | None = None) -> None:
        """After crash recovery: rebuild the allocator's overfitting guard and sample window
        from the journal, and keep the rounds' rhythm: the next round falls on the schedule
        of the journaled ones (``AllocatorSampled``), not one interval after the restart (a
        node restarting more often than ``interval_ns`` would never run a round). It is
        never before now nor ``not_before`` (the next bar a restarted loop will play)."""
        self.allocator.restore(records)
        last = self.allocator.last_sampled
        if last is None or self.stopped:
            return
        floor = max(self.kernel.clock.now_ns(), not_before or 0)
        due = last + self.interval_ns
        if due < floor:  # rounds missed while the node was down: the next one on schedule
            due += -(-(floor - due) // self.interval_ns) * self.interval_ns
        scheduler = self.kernel.scheduler
        if self.call is not None:
            scheduler.cancel(self.call)
        self.call = scheduler.schedule(due, self._tick)


def _halted(kernel: Kernel) -> str | None:
    if kernel.kill_switch.is_tripped("global"):
        return "global kill switch tripped"
    if kernel.execution.halted is not None:
        return f"execution halted: {kernel.execution.halted}"
    return None


def _eligible(kernel: Kernel, name: str) -> bool:
    """A strategy that is running and whose scopes are not tripped takes part."""
    runner = kernel.runners.get(name)
    if runner is None or runner.stopped is not None:
        return False
    engine = next((s.engine for s in kernel.slots if s.name == name), name)
    return not any(
        kernel.kill_switch.is_tripped(scope) for scope in (f"engine:{engine}", f"strategy:{name}")
    )


def attach_allocator(kernel: Kernel, allocator: Allocator, interval_ns: int) -> Governance:
    """Run ``allocator`` on ``kernel`` every ``interval_ns`` of kernel time (first round one
    interval after now). Capital moves only between running strategies' pools, never while
    the global kill switch is tripped or execution is halted; every transfer, refusal,
    rejected score and throttle is journaled through the kernel's bus.

    >>> governance = attach_allocator(kernel, Allocator(AllocatorConfig()), DAY_NS)
    ... # doctest: +SKIP
    """
    if interval_ns <= 0:
        raise ValueError(f"interval_ns must be > 0, got {interval_ns}")
    transfers = CapitalTransfers(
        bus=kernel.bus, clock=kernel.clock, exchange=kernel.exchange, portfolios=kernel.portfolios
    )
    symbol = kernel.instrument.symbol

    def marks() -> Mapping[str, int] | None:
        mark = kernel.exchange.mark(symbol)
        return None if mark is None else {symbol: mark}

    allocator.bind(
        clock=kernel.clock,
        publish=kernel.bus.publish,
        portfolios=kernel.portfolios,
        transfers=transfers,
        marks=marks,
        eligible=lambda name: _eligible(kernel, name),
        halted=lambda: _halted(kernel),
    )
    governance = Governance(kernel, allocator, transfers, interval_ns)
    governance.call = kernel.scheduler.schedule_in(interval_ns, governance._tick)
    return governance


def attach_from_config(kernel: Kernel, settings: Mapping[str, Any]) -> Governance:
    """:func:`attach_allocator` from plain settings (``{"interval_ns": ..., "allocator":
    {...}}``, as a TOML table or a ``BacktestConfig`` field holds them).

    Raises ``ValueError`` with every problem on one line for settings it cannot use.
    """
    try:
        config = msgspec.convert(dict(settings), GovernanceConfig)
    except msgspec.ValidationError as exc:
        raise ValueError(f"governance settings: {exc}") from None
    return attach_allocator(kernel, Allocator(config.allocator), config.interval_ns)
