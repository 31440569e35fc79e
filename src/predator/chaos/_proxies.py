"""Small proxies the fault injector owns: the venue client, the journal store, strategies
and the allocator's scorer.

Each one is installed on a running kernel by patching one instance attribute (never a
class, never a file of another package) and asks the injector which faults are active
on every call, so clearing a fault needs no uninstall.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import msgspec

from predator.market.bar import Bar
from predator.venue.orders import OrderRequest, RejectReason, VenueOrderRejected

if TYPE_CHECKING:
    from predator.chaos.injector import FaultInjector
    from predator.strategy.allocator import Allocator, PoolSample
    from predator.strategy.runner import StrategyRunner

__all__ = [
    "InjectedCommitFailure",
    "InjectedStrategyError",
    "ScorerProxy",
    "StoreProxy",
    "StrategyOverrun",
    "StrategyProxy",
    "VenueProxy",
]

NS_PER_SECOND = 1_000_000_000


class InjectedCommitFailure(sqlite3.OperationalError):
    """A journal commit failed (chaos ``commit_failure``): what a full or failing disk
    makes SQLite raise."""


class InjectedStrategyError(RuntimeError):
    """A strategy's code raised (chaos ``strategy_exception``)."""


class StrategyOverrun(TimeoutError):
    """A strategy's ``on_bar`` overran its time budget (chaos ``strategy_hang``).

    The simulation has no watchdog measuring strategy time, so the injector stands in for
    one: the hang surfaces as this error, which the runner's isolation treats as a failure.
    """


class VenueProxy:
    """Sits in front of ``kernel.broker.submit``: disconnects, rejects, timeouts, partials."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        broker = injector.kernel.broker
        self._submit: Callable[[OrderRequest], None] = broker.submit
        broker.submit = self.submit  # type: ignore[method-assign]
        self.timed_out: dict[str, str] = {}
        """Client order ids whose answers are lost, and the api_timeout fault losing them."""
        self.rejected = 0
        self.resized = 0

    def submit(self, request: OrderRequest) -> None:
        injector = self.injector
        fault = injector.first_active(
            ("venue_disconnect", "reject_storm", "api_timeout", "partial_fill_storm")
        )
        if fault is None:
            self._submit(request)
            return
        kind = fault.kind
        if kind == "venue_disconnect":
            injector.count(fault, "rejected")
            self._reject(request, RejectReason.VENUE_HALTED, "venue unreachable (disconnected)")
            return
        probability = float(fault.params.get("probability", 1.0))
        if kind == "reject_storm":
            if injector.rng.random() < probability:
                injector.count(fault, "rejected")
                self._reject(request, RejectReason.RATE_LIMIT_EXCEEDED, "venue overloaded")
                return
        elif kind == "api_timeout":
            if injector.rng.random() < probability:
                # The request reaches the venue; none of its answers come back while the
                # fault lasts. Only the venue's records (reconciliation) can resolve it.
                self.timed_out[request.client_order_id] = fault.fault_id
                injector.count(fault, "timed_out")
        elif kind == "partial_fill_storm":
            shrunk = self._shrink(request, fault.params)
            if shrunk is not request:
                injector.count(fault, "resized")
            request = shrunk
        self._submit(request)

    def _reject(self, request: OrderRequest, reason: RejectReason, detail: str) -> None:
        self.rejected += 1
        self.injector.publish(
            VenueOrderRejected(
                ts=self.injector.kernel.clock.now_ns(),
                client_order_id=request.client_order_id,
                reason=reason,
                detail=detail,
            )
        )

    def _shrink(self, request: OrderRequest, params: dict[str, Any]) -> OrderRequest:
        """The request the venue fills: 30-40 % of its size (the rest is never filled)."""
        low = float(params.get("min_fraction", 0.3))
        high = float(params.get("max_fraction", 0.4))
        share = Fraction(
            round(low + (high - low) * self.injector.rng.random(), 4)
        ).limit_denominator(10_000)
        if request.quantity:
            step = self.injector.kernel.instrument.size_increment
            quantity = max(step, int(request.quantity * share) // step * step)
            self.resized += 1
            return msgspec.structs.replace(request, quantity=quantity)
        if request.equity_fraction is not None:
            fraction = Fraction(Decimal(request.equity_fraction)) * share
            text = str(Decimal(fraction.numerator) / Decimal(fraction.denominator))
            self.resized += 1
            return msgspec.structs.replace(request, equity_fraction=text)
        return request  # close-position orders close in full


class StoreProxy:
    """Wraps ``journal.store``: failing commits and slow fsyncs."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        journal = injector.kernel.journal
        self.inner = journal.store
        journal.store = self
        self.failures = 0
        self.commits = 0
        self._left: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_batch(self, rows: Iterable[Any]) -> None:
        injector = self.injector
        failing = injector.first_active(("commit_failure",))
        if failing is not None:
            left = self._left.setdefault(failing.fault_id, int(failing.params.get("failures", 3)))
            if left > 0:
                self._left[failing.fault_id] = left - 1
                self.failures += 1
                injector.count(failing, "failed_commits")
                raise InjectedCommitFailure("disk I/O error (commit failed)")
        self.inner.write_batch(rows)
        self.commits += 1
        slow = injector.first_active(("slow_fsync",))
        if slow is not None:
            injector.stall(slow, int(float(slow.params.get("delay_s", 2)) * NS_PER_SECOND))


class StrategyProxy:
    """Wraps one runner's call into its strategy's ``on_bar``."""

    def __init__(self, injector: FaultInjector, name: str, runner: StrategyRunner) -> None:
        self.injector = injector
        self.name = name
        self.runner = runner
        self._on_bar: Callable[[Bar], None] = runner._strategy_on_bar
        runner._strategy_on_bar = self.on_bar
        self.flooded = 0
        self._flip = False

    def on_bar(self, bar: Bar) -> None:
        injector = self.injector
        fault = injector.strategy_fault(self.name)
        if fault is None:
            self._on_bar(bar)
            return
        kind = fault.kind
        if kind == "strategy_silence":
            # Silent death: the strategy skips more and more bars, without a word.
            elapsed = injector.kernel.clock.now_ns() - fault.at_ns
            share = min(1.0, elapsed / fault.duration_ns) if fault.duration_ns else 1.0
            if injector.rng.random() < share:
                injector.count(fault, "muted")
                return
            self._on_bar(bar)
            return
        if kind == "strategy_exception":
            injector.fired(fault)
            raise InjectedStrategyError(f"injected failure in on_bar ({fault.fault_id})")
        if kind == "strategy_hang":
            injector.fired(fault)
            overrun = fault.params.get("overrun_s", 120)
            raise StrategyOverrun(f"on_bar did not return within its budget ({overrun} s)")
        self._on_bar(bar)
        if kind == "order_flood":
            strategy = self.runner.strategy
            instrument = injector.kernel.instrument
            unit = Decimal(instrument.size_increment).scaleb(-instrument.size_precision)
            for _ in range(int(fault.params.get("multiplier", 10))):
                self._flip = not self._flip
                self.flooded += 1
                injector.count(fault, "flooded")
                if self._flip:
                    strategy.buy(unit)
                else:
                    strategy.sell(unit)


CORRUPT_SCORES: tuple[float, ...] = (math.nan, math.inf, -math.inf, 1e300, -1e300)
"""What a corrupted scorer returns, in turn: not finite, then out of any sane range."""


class ScorerProxy:
    """Wraps the allocator's scorer: ``score_corruption`` returns NaN, infinite and absurd
    scores in turn; ``overfit_scoring`` adds in-sample noise (a large, seeded random swing
    each call) to the target strategy's real score (``*``: every strategy's)."""

    def __init__(self, injector: FaultInjector, allocator: Allocator) -> None:
        self.injector = injector
        self.allocator = allocator
        self._score = allocator.scorer
        allocator.scorer = self.score
        self.corrupted = 0
        self.overfitted = 0

    def score(self, strategy: str, samples: Sequence[PoolSample]) -> float:
        injector = self.injector
        real = self._score(strategy, samples)
        corrupt = injector.first_active(("score_corruption",))
        if corrupt is not None:
            value = CORRUPT_SCORES[self.corrupted % len(CORRUPT_SCORES)]
            self.corrupted += 1
            injector.count(corrupt, "scores_corrupted")
            return value
        overfit = injector.first_active(("overfit_scoring",))
        if overfit is not None and str(overfit.params.get("strategy", "*")) in (strategy, "*"):
            # Re-optimised on the same data: a great in-sample score that swings wildly.
            swing = float(overfit.params.get("swing", 20.0))
            self.overfitted += 1
            injector.count(overfit, "scores_overfitted")
            return float(real) + abs(swing * float(injector.rng.standard_normal()))
        return real
