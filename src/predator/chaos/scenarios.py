"""The scenario library: named, parameterised attacks, each with what must detect it.

Market scenarios (and ``tail_loss``) are transforms of a real bar path
(``ScenarioLibrary.transform``); the others are compositions of planned faults
(``ScenarioLibrary.faults``) for a :class:`~predator.chaos.injector.FaultInjector`.
Every scenario names what in the system should detect it and what "handled" means, so a
campaign can check the outcome; a scenario that needs a component not built yet names it
in ``requires`` and :meth:`ScenarioLibrary.available` says so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import msgspec

from predator.chaos import _transforms
from predator.chaos.config import SCENARIO_NAMES
from predator.chaos.engine import NS_PER_SECOND, PlannedFault
from predator.market.bar_loader import BarFeed

__all__ = ["Scenario", "ScenarioLibrary", "UnknownScenario"]


class UnknownScenario(KeyError):
    """No scenario of that name; the message suggests the close ones."""


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """One scenario of the library.

    ``group``: market, infrastructure, exchange, strategy or governance. ``mode``:
    ``transform`` (a new bar path) or ``faults`` (planned faults). ``detected_by``: the
    components or checks that must notice it; ``handled``: what the system must end up
    doing; ``params``: the defaults (override per call); ``requires``: optional components
    it needs (``allocator``); the governance scenarios' detectors are the allocator's
    journaled decisions (``allocator.score_rejected`` ...).
    """

    name: str
    group: str
    mode: str
    description: str
    detected_by: tuple[str, ...]
    handled: str
    params: dict[str, Any] = {}
    requires: tuple[str, ...] = ()


_S = Scenario
_SCENARIOS: tuple[Scenario, ...] = (
    _S(
        name="flash_crash",
        group="market",
        mode="transform",
        description="Prices fall 30 % within 10 minutes, then win back half the fall in an hour.",
        detected_by=("max_drawdown", "stoploss_guard", "kill_switch.max_loss_from_peak"),
        handled="drawdown/loss protections stop new exposure; no order approved on a frozen "
        "feed during the crash; the books balance throughout",
        params={"drop": "0.30", "crash_minutes": 10, "rebound": "0.5", "rebound_minutes": 60},
    ),
    _S(
        name="bear_market",
        group="market",
        mode="transform",
        description="Three months of negative drift (-40 % trend) on top of the real moves.",
        detected_by=("max_drawdown", "low_profit", "kill_switch.max_loss_from_peak"),
        handled="losing pools are stopped by their protections before the global loss limit",
        params={"days": 90, "decline": "0.40"},
    ),
    _S(
        name="parabolic_mania",
        group="market",
        mode="transform",
        description="Every move multiplied by 5 for a week (5x volatility).",
        detected_by=("price_band", "max_drawdown", "circuit_breaker"),
        handled="no order outside the price band; exposure and leverage limits hold",
        params={"volatility": 5, "days": 7},
    ),
    _S(
        name="process_crash",
        group="infrastructure",
        mode="faults",
        description="The node dies (deaf and mute, pending journal batch lost); the venue lives.",
        detected_by=("recovery.audit", "reconciliation"),
        handled="a fresh node recovers from the durable journal and the venue, every venue "
        "trade applied exactly once, then keeps trading",
    ),
    _S(
        name="memory_leak",
        group="infrastructure",
        mode="faults",
        description="A component's processing cost grows: market data reaches the node later "
        "and later (5 s, doubling each step) until it is older than the stale-data limit.",
        detected_by=("stale_data",),
        handled="the stale-data guard denies new exposure once data lags past its limit",
        params={"steps": 8, "first_delay_s": 5, "step_s": 600},
    ),
    _S(
        name="bus_lag",
        group="infrastructure",
        mode="faults",
        description="Every bus message is held 5-10 s of kernel time and delivered in order.",
        detected_by=("stale_data", "reconciliation"),
        handled="nothing lost, nothing applied twice; books match the venue at the next check",
        params={"duration_s": 3600},
    ),
    _S(
        name="api_timeout",
        group="exchange",
        mode="faults",
        description="Submits reach the venue but get no answer for a while.",
        detected_by=("reconciliation",),
        handled="the unanswered order is never assumed canceled; reconciliation recovers its "
        "fills from the venue's trade log (FillRecovered), no mismatch",
        params={"duration_s": 600},
    ),
    _S(
        name="ghost_fill",
        group="exchange",
        mode="faults",
        description="A VenueOrderFilled report for a fill the venue never made.",
        detected_by=("reconciliation",),
        handled="FillReversed: the venue has no such trade, so the fill is undone exactly",
    ),
    _S(
        name="partial_fill_storm",
        group="exchange",
        mode="faults",
        description="For a while the venue fills only 30-40 % of each order.",
        detected_by=("reconciliation",),
        handled="positions and cash match the venue exactly; no exposure assumed beyond fills",
        params={"duration_s": 3600},
    ),
    _S(
        name="silent_death",
        group="strategy",
        mode="faults",
        description="A strategy silently stops trading (no error, no orders).",
        detected_by=("allocator.reallocated",),
        handled="the strategy stops trading, the others go on; governance keeps scoring it on "
        "its pool's equity and reallocates (it does not single out a silent strategy: no "
        "activity-decay detector yet, see docs/chaos.md)",
        requires=("allocator",),
        params={"duration_s": 7 * 86_400},
    ),
    _S(
        name="tail_loss",
        group="strategy",
        mode="transform",
        description="A -15 % slide within one day on the pool that holds the position.",
        detected_by=("max_drawdown", "kill_switch.daily_loss_limit"),
        handled="the pool's protections stop it; the other pools keep trading",
        params={"drop": "0.15", "hours": 24},
    ),
    _S(
        name="overfitting_loop",
        group="governance",
        mode="faults",
        description="A strategy re-optimised again and again on the same data: great in-sample "
        "scores, poor out-of-sample.",
        detected_by=("allocator.score_jump", "allocator.throttled"),
        handled="the allocator's guard limits the chase of in-sample scores: swings rejected "
        "(jump), reallocations throttled, capital moves at most once a day and at most 10 % "
        "of the pools' equity a move",
        requires=("allocator",),
        params={"duration_s": 3 * 86_400, "swing": 20.0},
    ),
    _S(
        name="over_aggression",
        group="governance",
        mode="faults",
        description="A strategy sends ten times its orders.",
        detected_by=("rate_limit", "circuit_breaker", "kill_switch.breaker_trips"),
        handled="rate-limit denials, its breaker opens, after 3 trips it is killed; other "
        "strategies keep trading",
        params={"duration_s": 1800, "multiplier": 10},
    ),
    _S(
        name="scoring_corruption",
        group="governance",
        mode="faults",
        description="NaN and absurd strategy scores reach the allocator.",
        detected_by=("allocator.score_rejected",),
        handled="the scores are rejected (ScoreRejected); no capital moves while they are corrupt",
        requires=("allocator",),
        params={"duration_s": 86_400},
    ),
    _S(
        name="cro_loss",
        group="governance",
        mode="faults",
        description="The risk engine's (CRO's) heartbeat stops.",
        detected_by=("execution.heartbeat",),
        handled="ExecutionHalted; no order reaches the venue once the last heartbeat is "
        "older than the heartbeat timeout",
        params={"duration_s": 3600},
    ),
)

_TRANSFORMS: dict[str, Callable[..., BarFeed]] = {
    "flash_crash": _transforms.flash_crash,
    "bear_market": _transforms.bear_market,
    "parabolic_mania": _transforms.parabolic_mania,
    "tail_loss": _transforms.tail_loss,
}

_REQUIREMENTS = {"allocator": "predator.strategy.allocator"}
"""Optional components and the module that provides each."""


class ScenarioLibrary:
    """Every scenario of the issue, by name.

    >>> library = ScenarioLibrary()
    >>> library.get("ghost_fill").detected_by
    ('reconciliation',)
    >>> [f.kind for f in library.faults("cro_loss", start_ns=0, targets=["s"])]
    ['component_freeze']
    """

    def __init__(self) -> None:
        self._scenarios = {scenario.name: scenario for scenario in _SCENARIOS}
        assert tuple(self._scenarios) == SCENARIO_NAMES

    def names(self) -> tuple[str, ...]:
        """Every scenario name, grouped market, infrastructure, exchange, strategy, governance."""
        return SCENARIO_NAMES

    def get(self, name: str) -> Scenario:
        """The scenario ``name`` (``UnknownScenario`` with a suggestion otherwise)."""
        scenario = self._scenarios.get(name)
        if scenario is None:
            import difflib

            close = difflib.get_close_matches(name, SCENARIO_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownScenario(f"unknown scenario {name!r}{hint}")
        return scenario

    def available(self, name: str) -> bool:
        """Whether every component ``name`` requires exists in this installation."""
        return all(
            importlib.util.find_spec(_REQUIREMENTS[need]) is not None
            for need in self.get(name).requires
        )

    # -- transforms ---------------------------------------------------------------------
    def transform(
        self, name: str, feed: BarFeed, start_ns: int, params: dict[str, Any] | None = None
    ) -> BarFeed:
        """``feed`` with scenario ``name`` applied from ``start_ns`` (market scenarios)."""
        scenario = self.get(name)
        if scenario.mode != "transform":
            raise ValueError(f"scenario {name} injects faults; use faults()")
        merged = {**scenario.params, **(params or {})}
        kwargs = {k: Fraction(v) if isinstance(v, str) else v for k, v in merged.items()}
        return _TRANSFORMS[name](feed, start_ns, **kwargs)

    # -- fault compositions -------------------------------------------------------------
    def faults(
        self,
        name: str,
        *,
        start_ns: int,
        targets: Sequence[str],
        params: dict[str, Any] | None = None,
    ) -> list[PlannedFault]:
        """The planned faults of scenario ``name`` from ``start_ns``; strategy faults hit
        the first of ``targets`` (sorted)."""
        scenario = self.get(name)
        if scenario.mode != "faults":
            raise ValueError(f"scenario {name} transforms market data; use transform()")
        p = {**scenario.params, **(params or {})}
        victim = sorted(targets)[0] if targets else "*"
        duration = int(p.get("duration_s", 0)) * NS_PER_SECOND

        def fault(
            kind: str, target: str, at: int = start_ns, length: int = duration, **extra: Any
        ) -> PlannedFault:
            return PlannedFault(
                at_ns=at,
                fault_id=f"{name}:{kind}-{at}",
                kind=kind,
                target=target,
                duration_ns=length,
                params=extra,
            )

        if name == "process_crash":
            return [fault("process_crash", "node", length=0)]
        if name == "memory_leak":
            step = int(p["step_s"]) * NS_PER_SECOND
            delay = int(p["first_delay_s"])
            plan = []
            for i in range(int(p["steps"])):
                plan.append(
                    fault(
                        "bus_delay",
                        "market_data",
                        at=start_ns + i * step,
                        length=step,
                        min_delay_s=delay,
                        max_delay_s=delay,
                    )
                )
                delay *= 2
            return plan
        if name == "bus_lag":
            return [
                fault("bus_delay", target, min_delay_s=5, max_delay_s=10)
                for target in ("market_data", "venue_reports", "risk")
            ]
        if name == "api_timeout":
            return [fault("api_timeout", "venue", probability=1.0)]
        if name == "ghost_fill":
            return [fault("ghost_fill", "venue", length=0, fraction=1.0)]
        if name == "partial_fill_storm":
            return [fault("partial_fill_storm", "venue", min_fraction=0.3, max_fraction=0.4)]
        if name == "over_aggression":
            return [fault("order_flood", victim, multiplier=int(p["multiplier"]))]
        if name == "cro_loss":
            return [fault("component_freeze", "cro_heartbeat")]
        if name == "silent_death":
            return [fault("strategy_silence", victim)]
        if name == "overfitting_loop":
            return [fault("overfit_scoring", "allocator", swing=float(p["swing"]), strategy=victim)]
        if name == "scoring_corruption":
            return [fault("score_corruption", "allocator")]
        raise ValueError(f"scenario {name} has no fault composition")
