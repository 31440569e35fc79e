"""Sweeps: one campaign per seed, run in parallel, aggregated into one verdict.

The executor is an interface (``SweepExecutor``) in the style of httpx transports:
``ProcessPoolSweepExecutor`` runs seeds on a local process pool
(``concurrent.futures``), ``InlineSweepExecutor`` in this process (tests), and a Dask
client can take over later with the same two methods. Each seed is an independent,
deterministic campaign; the sweep lists the failing seeds with their reproduction
commands.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import msgspec

from predator.campaign.campaign import Campaign
from predator.campaign.config import CampaignConfig, CampaignError

__all__ = [
    "InlineSweepExecutor",
    "ProcessPoolSweepExecutor",
    "SeedOutcome",
    "SweepExecutor",
    "SweepResult",
    "parse_seeds",
    "run_seed",
    "run_sweep",
]


class SeedOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One seed's campaign, as the sweep keeps it."""

    seed: int
    verdict: str
    journal_digest: str
    failed_gates: list[str]
    reproduce: str
    uptime_pct: str
    kill_switch_trips: int
    crashes: int
    faults_injected: int
    fatal: str | None = None


class SweepResult(msgspec.Struct, frozen=True, kw_only=True):
    """Every seed's outcome (sorted by seed) and the sweep's verdict."""

    outcomes: list[SeedOutcome]

    @property
    def failing(self) -> list[SeedOutcome]:
        return [o for o in self.outcomes if o.verdict != "PASS"]

    @property
    def verdict(self) -> str:
        return "FAIL" if self.failing else "PASS"

    def summary(self) -> dict[str, Any]:
        """The JSON report of a sweep."""
        return {
            "verdict": self.verdict,
            "seeds": len(self.outcomes),
            "passed": len(self.outcomes) - len(self.failing),
            "failed": [
                {
                    "seed": o.seed,
                    "gates": o.failed_gates,
                    "fatal": o.fatal,
                    "reproduce": o.reproduce,
                }
                for o in self.failing
            ],
            "outcomes": [msgspec.to_builtins(o) for o in self.outcomes],
        }


class SweepExecutor(Protocol):
    """Runs ``function`` over ``items``; yields the results as they complete."""

    def run(self, function: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...


class InlineSweepExecutor:
    """Runs every item in this process, in order (tests, debugging)."""

    def run(self, function: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        for item in items:
            yield function(item)

    def close(self) -> None:
        return None


class ProcessPoolSweepExecutor:
    """Runs items on a local process pool of ``workers`` processes."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise CampaignError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers)

    def run(self, function: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        futures = [self._pool.submit(function, item) for item in items]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def parse_seeds(text: str) -> list[int]:
    """``A..B`` (inclusive) or ``A,B,C`` as a sorted list of distinct seeds."""
    text = text.strip()
    try:
        if ".." in text:
            low, _, high = text.partition("..")
            first, last = int(low), int(high)
            if last < first:
                raise CampaignError(f"--seeds {text}: the range ends before it starts")
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CampaignError(
            f"--seeds expects A..B or A,B,C (whole numbers), got {text!r}"
        ) from None
    if not seeds or min(seeds) < 0:
        raise CampaignError(f"--seeds expects seeds >= 0, got {text!r}")
    return sorted(set(seeds))


def run_seed(config: CampaignConfig) -> SeedOutcome:
    """One seed's campaign (a top-level function, so a process pool can pickle it)."""
    result = Campaign(config).run()
    metrics = result.metrics
    return SeedOutcome(
        seed=config.seed,
        verdict=result.verdict,
        journal_digest=result.journal_digest,
        failed_gates=[gate.name for gate in result.failures()],
        reproduce=config.command(),
        uptime_pct=str(metrics["uptime_pct"]),
        kill_switch_trips=int(metrics["kill_switch_trips"]),
        crashes=int(metrics["crashes"]),
        faults_injected=int(metrics["faults_injected"]),
        fatal=result.fatal,
    )


def run_sweep(
    base: CampaignConfig,
    seeds: Sequence[int],
    executor: SweepExecutor,
    *,
    on_outcome: Callable[[SeedOutcome], None] | None = None,
) -> SweepResult:
    """Run ``base`` once per seed on ``executor`` (each seed's files in ``out/seed-N``)."""
    base.validated()
    configs = [
        msgspec.structs.replace(
            base,
            seed=seed,
            out_dir=None if base.out_dir is None else f"{base.out_dir}/seed-{seed}",
        )
        for seed in seeds
    ]
    outcomes: list[SeedOutcome] = []
    for outcome in executor.run(run_seed, configs):
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return SweepResult(outcomes=sorted(outcomes, key=lambda o: o.seed))
