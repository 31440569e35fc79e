"""The fault injector: carries out planned faults against a running kernel.

It sits on the kernel's bus as its interceptor (bus faults, frozen components, lost
venue answers, ghost fills), wraps the venue client, the journal and the strategies in
small proxies it owns (venue, storage and strategy faults), and reports every fault on
the :class:`~predator.chaos.bus.ChaosBus`. A process crash is only *requested* here: the
campaign loop performs it (the node dies, the venue lives) and calls ``crash_handled``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from predator.chaos.bus import ChaosBus
from predator.chaos.engine import PlannedFault
from predator.chaos.events import FaultCleared, FaultInjected
from predator.core.bus import Interceptor
from predator.core.events import Message

if TYPE_CHECKING:
    from predator.node.kernel import Kernel

__all__ = ["FaultInjector"]


class FaultInjector:
    """Injects and clears faults on ``kernel``; installs itself as its bus interceptor.

    An interceptor already on the bus (a crash harness, another tool) keeps working:
    messages this injector lets through go on to it.
    """

    def __init__(self, kernel: Kernel, chaos_bus: ChaosBus, rng: np.random.Generator) -> None:
        self.kernel = kernel
        self.chaos_bus = chaos_bus
        self.rng = rng
        self.active: dict[str, PlannedFault] = {}
        self.crash_requested: PlannedFault | None = None
        self.not_applicable: list[str] = []
        self._inner: Interceptor | None = kernel.bus.interceptor
        kernel.bus.interceptor = self

    # -- the bus hook -------------------------------------------------------------------
    def intercept(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        return self._pass(message, deliver)

    def _pass(self, message: Message, deliver: Callable[[Message], Any]) -> Any:
        if self._inner is not None:
            return self._inner.intercept(message, deliver)
        return deliver(message)

    # -- planned faults -----------------------------------------------------------------
    def inject(self, fault: PlannedFault) -> None:
        """Start ``fault`` now (kernel time) and report it on the chaos bus."""
        now = self.kernel.clock.now_ns()
        detail: dict[str, Any] = dict(fault.params)
        if fault.kind == "process_crash":
            self.crash_requested = fault
        self.active[fault.fault_id] = fault
        self.chaos_bus.publish(
            FaultInjected(
                ts=now,
                fault_id=fault.fault_id,
                kind=fault.kind,
                target=fault.target,
                detail=detail,
                until_ts=fault.until_ns,
            )
        )

    def clear(self, fault_id: str) -> bool:
        """End fault ``fault_id``; False when it is not active (already cleared)."""
        fault = self.active.pop(fault_id, None)
        if fault is None:
            return False
        self.chaos_bus.publish(
            FaultCleared(ts=self.kernel.clock.now_ns(), fault_id=fault_id, kind=fault.kind)
        )
        return True

    def crash_handled(self) -> None:
        """The campaign crashed and recovered the node: the crash fault is over."""
        fault = self.crash_requested
        self.crash_requested = None
        if fault is not None:
            self.clear(fault.fault_id)

    def uninstall(self) -> None:
        """Give the bus back its previous interceptor (end of a run)."""
        if self.kernel.bus.interceptor is self:
            self.kernel.bus.interceptor = self._inner
