"""The fault injector: carries out planned faults against a running kernel.

It sits on the kernel's bus as its interceptor (bus faults, frozen components and
market data, lost venue answers, ghost fills), wraps the venue client, the journal
store, the strategies and (once :meth:`FaultInjector.govern` names it) the allocator's
scorer in small proxies it owns (``_proxies``), and reports every fault on the
:class:`~predator.chaos.bus.ChaosBus`. A process crash is only *requested* here: the
campaign loop performs it (the node dies, the venue lives) and calls
:meth:`FaultInjector.crash_handled`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from predator.chaos._proxies import ScorerProxy, StoreProxy, StrategyProxy, VenueProxy
from predator.chaos.bus import ChaosBus
from predator.chaos.config import category_of
from predator.chaos.engine import PlannedFault
from predator.chaos.events import FaultCleared, FaultInjected
from predator.core.bus import Interceptor
from predator.core.events import Command, Message
from predator.execution.execution_engine import ExecuteOrder
from predator.execution.heartbeat import CroHeartbeat
from predator.market.bar import Bar
from predator.risk.risk_engine import RiskDecision, SubmitOrder
from predator.venue.orders import Liquidity, VenueOrderAccepted, VenueOrderFilled, VenueReport

if TYPE_CHECKING:
    from predator.node.kernel import Kernel
    from predator.strategy.allocator import Allocator

__all__ = ["FaultInjector", "Finding"]

NS_PER_SECOND = 1_000_000_000

TARGET_TYPES: dict[str, tuple[type, ...]] = {
    "market_data": (Bar,),
    "venue_reports": (VenueReport,),
    "orders": (SubmitOrder, ExecuteOrder),
    "risk": (RiskDecision, CroHeartbeat),
}
"""The messages a bus fault against each target hits."""

_MESSAGE_KINDS = (
    "venue_disconnect",
    "component_freeze",
    "api_timeout",
    "frozen_market_data",
    "bus_corrupt",
    "bus_drop",
    "bus_delay",
    "bus_reorder",
    "bus_duplicate",
)
"""Fault kinds acting on bus messages, in the order they get the first say. A frozen feed
comes before the bus faults: a bar that never arrives cannot be duplicated or delayed
(found by campaign seed 5: a duplicate fault delivered bars through a freeze)."""

Deliver = Callable[[Message], Any]


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """A component failed on chaos input (it raised instead of rejecting): a system bug."""

    ts: int
    fault_id: str
    kind: str
    message: str
    error: str


class FaultInjector:
    """Injects and clears faults on ``kernel``; installs itself as its bus interceptor.

    An interceptor already on the bus (a crash harness, another tool) keeps working:
    whatever this injector lets through goes on to it. ``rng`` draws the per-message
    choices (drop or not, the corruption) so a run stays a function of its seed.
    """

    def __init__(self, kernel: Kernel, chaos_bus: ChaosBus, rng: np.random.Generator) -> None:
        self.kernel = kernel
        self.chaos_bus = chaos_bus
        self.rng = rng
        self.active: dict[str, PlannedFault] = {}
        self.crash_requested: PlannedFault | None = None
        self.not_applicable: list[PlannedFault] = []
        self.findings: list[Finding] = []
        self.counts: dict[str, dict[str, int]] = {}
        """Per fault id, what it did (``dropped``, ``delayed``, ``timed_out`` ...)."""
        self._bypass = 0
        self._held: dict[str, list[tuple[Message, Deliver]]] = {}
        self._ghosts: list[PlannedFault] = []
        self._frozen_bar: Bar | None = None
        self._stall_until = 0
        self._inner: Interceptor | None = kernel.bus.interceptor
        kernel.bus.interceptor = self
        self.venue = VenueProxy(self)
        self.store = StoreProxy(self)
        self.strategies = {
            name: StrategyProxy(self, name, runner) for name, runner in kernel.runners.items()
        }
        self.scorer: ScorerProxy | None = None
        """The proxy on the allocator's scorer, once :meth:`govern` gave it one."""

    def govern(self, allocator: Allocator) -> None:
        """Reach the node's allocator (governance faults act on its scorer). Whoever
        attaches governance calls this; without it governance faults do not apply."""
        self.scorer = ScorerProxy(self, allocator)

    # -- helpers for the proxies --------------------------------------------------------
    def first_active(self, kinds: Iterable[str]) -> PlannedFault | None:
        """The active fault of the first of ``kinds`` that has one (oldest first)."""
        for kind in kinds:
            for fault in self.active.values():
                if fault.kind == kind:
                    return fault
        return None

    def strategy_fault(self, name: str) -> PlannedFault | None:
        """The active strategy fault aimed at strategy ``name`` (or at every strategy)."""
        for fault in self.active.values():
            if category_of(fault.kind) == "strategy" and fault.target in (name, "*"):
                return fault
        return None

    def fired(self, fault: PlannedFault) -> None:
        """A one-shot fault did its work: it is over."""
        self.count(fault, "fired")
        self.clear(fault.fault_id)

    def count(self, fault: PlannedFault, what: str, n: int = 1) -> None:
        counts = self.counts.setdefault(fault.fault_id, {})
        counts[what] = counts.get(what, 0) + n

    def publish(self, message: Message) -> Any:
        """Put ``message`` on the kernel bus past every fault (injected reports)."""
        self._bypass += 1
        try:
            if isinstance(message, Command):
                return self.kernel.bus.send(message)
            self.kernel.bus.publish(message)  # type: ignore[arg-type]
            return None
        finally:
            self._bypass -= 1

    def stall(self, fault: PlannedFault, delay_ns: int) -> None:
        """The node is blocked for ``delay_ns`` (a slow fsync): what arrives waits."""
        until = self.kernel.clock.now_ns() + delay_ns
        if until > self._stall_until:
            self._stall_until = until
            self.count(fault, "stalls")

    # -- the bus hook -------------------------------------------------------------------
    def intercept(self, message: Message, deliver: Deliver) -> Any:
        if self._bypass or not (self.active or self._stall_until or self._ghosts):
            return self._pass(message, deliver)
        now = self.kernel.clock.now_ns()
        if self._stall_until:
            if now < self._stall_until and isinstance(message, Bar | VenueReport):
                self._venue_sees(message)
                self.kernel.scheduler.schedule(self._stall_until, self._release, message, deliver)
                return None
            if now >= self._stall_until:
                self._stall_until = 0
        for kind in _MESSAGE_KINDS:
            for fault in list(self.active.values()):
                if fault.kind == kind and self._hits(fault, message):
                    return getattr(self, f"_on_{kind}")(fault, message, deliver)
        answer = self._pass(message, deliver)
        if self._ghosts and isinstance(message, VenueOrderAccepted):
            self._fire_ghost(message)
        return answer

    def _pass(self, message: Message, deliver: Deliver) -> Any:
        if self._inner is not None:
            return self._inner.intercept(message, deliver)
        return deliver(message)

    def _hits(self, fault: PlannedFault, message: Message) -> bool:
        kind = fault.kind
        if kind == "component_freeze":
            frozen = self._frozen_type(fault)
            return frozen is not None and isinstance(message, frozen)
        if kind == "api_timeout":
            return (
                isinstance(message, VenueReport)
                and self.venue.timed_out.get(message.client_order_id) == fault.fault_id
            )
        if kind == "venue_disconnect":
            return isinstance(message, VenueReport)
        if kind == "frozen_market_data":
            return isinstance(message, Bar)
        types = TARGET_TYPES.get(fault.target)
        return types is None or isinstance(message, types)

    @staticmethod
    def _frozen_type(fault: PlannedFault) -> type | None:
        component = fault.target
        if component == "cro_heartbeat":
            return CroHeartbeat
        if component == "risk_engine":
            return SubmitOrder
        return None

    def _venue_sees(self, message: Message) -> None:
        """The venue has its own market data: a bar the node loses still reaches it."""
        if isinstance(message, Bar):
            self.kernel.exchange.on_bar(message)

    def _release(self, message: Message, deliver: Deliver) -> None:
        self._bypass += 1
        try:
            self._pass(message, deliver)
        finally:
            self._bypass -= 1

    def _guarded(self, fault: PlannedFault, message: Message, deliver: Deliver | None) -> Any:
        """Deliver chaos-made input (``deliver=None``: publish it on the bus); a component
        raising on it is recorded as a finding, then the error goes on."""
        self._bypass += 1
        try:
            if deliver is None:
                return self.publish(message)
            return self._pass(message, deliver)
        except Exception as exc:
            self.findings.append(
                Finding(
                    ts=self.kernel.clock.now_ns(),
                    fault_id=fault.fault_id,
                    kind=fault.kind,
                    message=repr(message)[:300],
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            raise
        finally:
            self._bypass -= 1

    # -- message faults -----------------------------------------------------------------
    def _lose(self, fault: PlannedFault, message: Message, what: str) -> None:
        self._venue_sees(message)
        self.count(fault, what)

    def _on_venue_disconnect(self, fault: PlannedFault, message: Message, _d: Deliver) -> Any:
        self._lose(fault, message, "reports_lost")
        return None

    def _on_component_freeze(self, fault: PlannedFault, message: Message, _d: Deliver) -> Any:
        self._lose(fault, message, "silenced")
        return None

    def _on_api_timeout(self, fault: PlannedFault, message: Message, _d: Deliver) -> Any:
        self._lose(fault, message, "answers_lost")
        return None

    def _on_bus_drop(self, fault: PlannedFault, message: Message, deliver: Deliver) -> Any:
        if self.rng.random() < float(fault.params.get("probability", 0.5)):
            self._lose(fault, message, "dropped")
            return None
        return self._pass(message, deliver)

    def _on_bus_duplicate(self, fault: PlannedFault, message: Message, deliver: Deliver) -> Any:
        answer = self._pass(message, deliver)
        if self.rng.random() < float(fault.params.get("probability", 0.5)):
            self.count(fault, "duplicated")
            self._guarded(fault, message, deliver)
        return answer

    def _on_bus_delay(self, fault: PlannedFault, message: Message, deliver: Deliver) -> Any:
        delay = int(fault.params.get("delay_ns", 0))
        self._venue_sees(message)
        self.count(fault, "delayed")
        self.kernel.scheduler.schedule_in(delay, self._release, message, deliver)
        return None

    def _on_bus_reorder(self, fault: PlannedFault, message: Message, deliver: Deliver) -> Any:
        self._venue_sees(message)
        held = self._held.setdefault(fault.fault_id, [])
        held.append((message, deliver))
        if len(held) >= int(fault.params.get("window", 3)):
            self._flush_reordered(fault)
        return None

    def _flush_reordered(self, fault: PlannedFault) -> None:
        held = self._held.pop(fault.fault_id, [])
        if not held:
            return
        order = [int(i) for i in self.rng.permutation(len(held))]
        if order == sorted(order) and len(held) > 1:
            order.reverse()  # a reorder that changes nothing would test nothing
        self.count(fault, "reordered", len(held))
        for index in order:
            self._release(*held[index])

    def _on_bus_corrupt(self, fault: PlannedFault, message: Message, deliver: Deliver) -> Any:
        if self.rng.random() >= float(fault.params.get("probability", 0.2)):
            return self._pass(message, deliver)
        corrupted = self._corrupt(message)
        if corrupted is None:
            return self._pass(message, deliver)
        self._venue_sees(message)
        self.count(fault, "corrupted")
        return self._guarded(fault, corrupted, deliver)

    def _corrupt(self, message: Message) -> Message | None:
        """A copy of ``message`` with one invalid field (what a receiver must refuse)."""
        pick = int(self.rng.integers(3))
        if isinstance(message, Bar):
            if pick == 0:
                return msgspec.structs.replace(message, high=message.low - 1)  # high < low
            if pick == 1:
                return msgspec.structs.replace(message, close=-message.close)
            return msgspec.structs.replace(message, open=0, low=0)
        if isinstance(message, VenueOrderFilled):
            if pick == 0:
                return msgspec.structs.replace(message, quantity=-message.quantity)
            if pick == 1:
                return msgspec.structs.replace(message, price=0)
            return msgspec.structs.replace(message, leaves_quantity=-1)
        if isinstance(message, VenueReport):
            return msgspec.structs.replace(message, client_order_id="")
        return None

    def _on_frozen_market_data(
        self, fault: PlannedFault, message: Message, deliver: Deliver
    ) -> Any:
        assert isinstance(message, Bar)
        self._venue_sees(message)
        frozen = self._frozen_bar
        if fault.params.get("mode", "stop") == "repeat" and frozen is not None:
            self.count(fault, "repeated")
            return self._guarded(fault, frozen, deliver)
        self.count(fault, "withheld")
        return None

    # -- ghost fills --------------------------------------------------------------------
    def _fire_ghost(self, accepted: VenueOrderAccepted) -> None:
        fault = self._ghosts.pop(0)
        order = self.kernel.execution.orders.get(accepted.client_order_id)
        if order is None:
            self._ghosts.insert(0, fault)
            return
        request = order.request
        instrument = self.kernel.instrument
        quantity = request.quantity or instrument.size_increment
        price = self.kernel.closes[-1] if self.kernel.closes else instrument.price_increment
        ghost = VenueOrderFilled(
            ts=self.kernel.clock.now_ns(),
            client_order_id=request.client_order_id,
            venue_order_id=accepted.venue_order_id,
            trade_id=f"G-{fault.fault_id}",
            account=request.account,
            symbol=request.symbol,
            side=request.side,
            price=price,
            quantity=max(
                instrument.size_increment, int(quantity * float(fault.params.get("fraction", 1.0)))
            ),
            fee=0,
            liquidity=Liquidity.TAKER,
            order_quantity=quantity,
            # Never complete the order: the venue's real fill must still apply.
            leaves_quantity=instrument.size_increment,
        )
        self.count(fault, "ghost_fills")
        self._guarded(fault, ghost, None)

    # -- planned faults -----------------------------------------------------------------
    def inject(self, fault: PlannedFault) -> None:
        """Start ``fault`` now (kernel time) and report it on the chaos bus."""
        now = self.kernel.clock.now_ns()
        detail: dict[str, Any] = dict(fault.params)
        kind = fault.kind
        if kind == "clock_skew":
            # One kernel clock drives every component in simulation: nothing can skew.
            detail["not_applicable"] = "simulation runtime: one kernel clock, no skew possible"
            self.not_applicable.append(fault)
        elif kind == "process_crash":
            self.crash_requested = fault
        elif kind == "bus_delay":
            low = int(fault.params.get("min_delay_s", 5))
            high = max(low, int(fault.params.get("max_delay_s", 10)))
            delay_ns = int(self.rng.integers(low, high + 1)) * NS_PER_SECOND
            fault = msgspec.structs.replace(fault, params={**fault.params, "delay_ns": delay_ns})
            detail["delay_ns"] = delay_ns
        elif kind == "ghost_fill":
            self._ghosts.append(fault)
        elif kind == "frozen_market_data":
            bars = self.kernel.exchange.last_bar(self.kernel.instrument.symbol)
            self._frozen_bar = bars
        elif category_of(kind) == "governance" and self.scorer is None:
            detail["not_applicable"] = "no allocator on this node (governance is off)"
            self.not_applicable.append(fault)
        if kind not in ("clock_skew", "ghost_fill"):
            self.active[fault.fault_id] = fault
        self.chaos_bus.publish(
            FaultInjected(
                ts=now,
                fault_id=fault.fault_id,
                kind=kind,
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
        if fault.kind == "bus_reorder":
            self._flush_reordered(fault)
        elif fault.kind == "api_timeout":
            for client_order_id in [
                c for c, f in self.venue.timed_out.items() if f == fault.fault_id
            ]:
                del self.venue.timed_out[client_order_id]
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
