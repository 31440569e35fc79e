"""The chaos engine: a deterministic schedule of faults over a simulated period.

From the campaign seed it draws Poisson arrivals per fault kind per simulated day, a
duration for each and a target, giving ``plan`` (the same seed gives the same plan);
``attach`` puts every injection and clearance on the kernel's scheduler, where a
:class:`~predator.chaos.injector.FaultInjector` carries them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from predator.chaos.config import FAULT_CATEGORY, ChaosConfig
from predator.chaos.events import priority_of
from predator.core.rng import RngStreams

if TYPE_CHECKING:
    from predator.chaos.injector import FaultInjector
    from predator.node.kernel import Kernel

__all__ = ["ChaosEngine", "PlannedFault"]

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND

BUS_TARGETS: tuple[str, ...] = ("market_data", "venue_reports", "orders", "risk")
"""What a bus fault hits: bars, venue reports, order commands, risk decisions/heartbeats."""
CORRUPT_TARGETS: tuple[str, ...] = ("market_data", "venue_reports")
_FIXED_TARGET = {
    "crash": "node",
    "venue": "venue",
    "market": "market_data",
    "storage": "journal",
    "clock": "clock",
    "governance": "allocator",
}


class PlannedFault(msgspec.Struct, frozen=True, kw_only=True):
    """One fault of the plan: ``kind`` against ``target`` from ``at_ns`` for ``duration_ns``."""

    at_ns: int
    fault_id: str
    kind: str
    target: str
    duration_ns: int
    params: dict[str, Any] = {}

    @property
    def until_ns(self) -> int:
        """When the fault is cleared (``at_ns`` for instantaneous faults)."""
        return self.at_ns + self.duration_ns

    @property
    def priority(self) -> int:
        return priority_of(self.kind)


class ChaosEngine:
    """The fault plan of one run and its execution on a kernel's scheduler.

    ``targets`` are the strategy names strategy faults choose among (sorted, so their
    order does not matter). Each fault kind draws from its own RNG stream
    (``chaos.plan.<kind>``), so changing one kind's rate never moves the others.

    >>> cfg = ChaosConfig.preset("heavy")
    >>> a = ChaosEngine(cfg, seed=1, start_ns=0, end_ns=NS_PER_DAY, targets=["s"]).plan
    >>> a == ChaosEngine(cfg, seed=1, start_ns=0, end_ns=NS_PER_DAY, targets=["s"]).plan
    True
    """

    def __init__(
        self,
        config: ChaosConfig,
        *,
        seed: int,
        start_ns: int,
        end_ns: int,
        targets: Sequence[str],
    ) -> None:
        if end_ns < start_ns:
            raise ValueError(f"end_ns {end_ns} is before start_ns {start_ns}")
        self.config = config
        self.seed = seed
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.targets = tuple(sorted(targets))
        self.plan: list[PlannedFault] = self._build_plan(RngStreams(seed))
        self.injected = 0
        self.cleared = 0
        self._injector: FaultInjector | None = None

    def _build_plan(self, streams: RngStreams) -> list[PlannedFault]:
        plan: list[PlannedFault] = []
        span = self.end_ns - self.start_ns
        for kind, spec in self.config.faults.items():
            if spec.rate_per_day <= 0 or span <= 0:
                continue
            rng = streams.stream(f"chaos.plan.{kind}")
            mean_gap_ns = NS_PER_DAY / spec.rate_per_day
            at = self.start_ns
            n = 0
            while True:
                at += max(1, int(rng.exponential(mean_gap_ns)))
                if at >= self.end_ns:
                    break
                n += 1
                seconds = int(rng.integers(spec.min_duration_s, spec.max_duration_s + 1))
                plan.append(
                    PlannedFault(
                        at_ns=at,
                        fault_id=f"{kind}-{n}",
                        kind=kind,
                        target=self._target(kind, spec.params, rng),
                        duration_ns=seconds * NS_PER_SECOND,
                        params=dict(spec.params),
                    )
                )
        plan.sort(key=lambda f: (f.at_ns, -f.priority, f.kind, f.fault_id))
        return plan

    def _target(self, kind: str, params: dict[str, Any], rng: Any) -> str:
        category = FAULT_CATEGORY[kind]
        if category == "strategy":
            pool = self.targets or ("*",)
        elif kind == "bus_corrupt":
            pool = CORRUPT_TARGETS
        elif category == "bus":
            pool = BUS_TARGETS
        elif kind == "component_freeze":
            return str(params.get("component", "cro_heartbeat"))
        else:
            return _FIXED_TARGET[category]
        return pool[int(rng.integers(len(pool)))]

    def kinds(self) -> dict[str, int]:
        """How many faults of each kind the plan holds (kinds in config order)."""
        counts: dict[str, int] = {}
        for fault in self.plan:
            counts[fault.kind] = counts.get(fault.kind, 0) + 1
        return counts

    def attach(self, kernel: Kernel, injector: FaultInjector) -> None:
        """Schedule every planned injection and clearance on ``kernel.scheduler``."""
        self._injector = injector
        scheduler = kernel.scheduler
        for fault in self.plan:
            scheduler.schedule(fault.at_ns, self._inject, fault)
        for fault in sorted(self.plan, key=lambda f: (f.until_ns, f.at_ns, f.fault_id)):
            if fault.kind != "process_crash":  # cleared by crash_handled()
                scheduler.schedule(fault.until_ns, self._clear, fault)

    def _inject(self, fault: PlannedFault) -> None:
        assert self._injector is not None
        self.injected += 1
        self._injector.inject(fault)

    def _clear(self, fault: PlannedFault) -> None:
        assert self._injector is not None
        if self._injector.clear(fault.fault_id):
            self.cleared += 1
