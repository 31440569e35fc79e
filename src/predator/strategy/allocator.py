"""The allocator (governance): scores strategies and moves capital between their pools.

Each round it samples every pool's equity, scores each strategy on its recent performance
(return over drawdown on a rolling window, net of transfers), sanity-checks every score
(NaN, infinite, out of range, a sudden jump: ``ScoreRejected``, nothing moves), turns the
scores into bounded target weights and moves free cash with ``CapitalTransferred``. Its
overfitting guard (hysteresis, a minimum interval, a daily limit) journals
``AllocationThrottled`` when it declines to act. Deterministic: no wall clock, no RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from itertools import pairwise
from typing import Any

import msgspec

from predator.core.clock import Clock
from predator.core.events import Event
from predator.ledger.journal import JournalRecord
from predator.portfolio.portfolio import Portfolio
from predator.portfolio.transfers import CapitalTransferred, CapitalTransfers

__all__ = [
    "DAY_NS",
    "AllocationThrottled",
    "Allocator",
    "AllocatorConfig",
    "AllocatorSampled",
    "CapitalReallocated",
    "PoolSample",
    "ScoreRejected",
    "Scorer",
    "bounded_weights",
    "return_over_drawdown",
]

DAY_NS = 86_400 * 1_000_000_000


# -- events ---------------------------------------------------------------------------------
class ScoreRejected(Event, frozen=True, kw_only=True):
    """A strategy's score failed its sanity check; no capital moves on that round.

    ``score`` is the rejected value as text (``nan``, ``inf``, ``1e+300``: the journal's
    JSON has no NaN); ``reason`` names the check (``not_finite``, ``out_of_range``,
    ``jump``) and the numbers behind it.
    """

    strategy: str
    score: str
    reason: str


class AllocationThrottled(Event, frozen=True, kw_only=True):
    """The allocator declined to reallocate this round, and why.

    ``reason``: ``hysteresis`` (targets within the band of the current weights),
    ``min_interval`` (too soon after the last reallocation), ``daily_limit`` (the day's
    reallocations used up), ``no_free_cash`` (nothing movable without closing positions),
    ``halted`` (trading is halted: governance does not act).
    """

    reason: str
    detail: str
    reallocations_today: int


class AllocatorSampled(Event, frozen=True, kw_only=True):
    """One round's sample of every pool: equity at the marks and net transfers in (money
    units), by strategy. Journaled so a restarted node rebuilds the scoring window instead
    of warming up again (campaigns crash about daily at their extreme setting)."""

    equity: dict[str, int]
    transfers: dict[str, int]


class CapitalReallocated(Event, frozen=True, kw_only=True):
    """One reallocation: the accepted scores, the target weights (decimal text, 6 places)
    and what moved: ``transfers`` made, ``moved`` money units (its ``CapitalTransferred``
    events precede it)."""

    scores: dict[str, float]
    targets: dict[str, str]
    transfers: int
    moved: int


# -- configuration --------------------------------------------------------------------------
class AllocatorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the allocator scores and how far it may move capital. Defaults in brackets.

    - ``window`` [20]: returns per score (a pool is scored once it has window + 1 samples).
    - ``drawdown_floor`` [0.01]: the drawdown a score divides by at least.
    - ``score_bound`` [1e6]: a score outside ``[-score_bound, score_bound]`` is rejected.
    - ``max_score_jump`` [5.0]: a score further than this from the strategy's previous
      score is rejected (a one-round spike; a level that persists passes the round after).
    - ``min_weight`` / ``max_weight`` ["0.1" / "0.9"]: bounds of each target weight.
    - ``max_move_fraction`` ["0.1"]: at most this share of the pools' equity moves per round.
    - ``hysteresis`` ["0.05"]: no move unless a target is this far from its current weight.
    - ``min_interval_ns`` [1 day]: at least this long between two reallocations.
    - ``max_reallocations_per_day`` [1]: reallocations in any 24 h of kernel time.
    - ``min_transfer`` [1]: smaller transfers (money units) are not made.
    """

    window: int = 20
    drawdown_floor: float = 0.01
    score_bound: float = 1e6
    max_score_jump: float = 5.0
    min_weight: str = "0.1"
    max_weight: str = "0.9"
    max_move_fraction: str = "0.1"
    hysteresis: str = "0.05"
    min_interval_ns: int = DAY_NS
    max_reallocations_per_day: int = 1
    min_transfer: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.window < 1:
            problems.append(f"window must be >= 1, got {self.window}")
        if not self.drawdown_floor > 0:
            problems.append(f"drawdown_floor must be > 0, got {self.drawdown_floor}")
        if not 0 < self.score_bound < math.inf:
            problems.append(f"score_bound must be finite and > 0, got {self.score_bound}")
        if not self.max_score_jump > 0:
            problems.append(f"max_score_jump must be > 0, got {self.max_score_jump}")
        try:
            low, high = self.weight_bounds
            move, band = self.move_fraction, self.band
        except (ValueError, ZeroDivisionError) as exc:
            problems.append(f"weights and fractions are decimal strings: {exc}")
        else:
            if not 0 <= low <= high <= 1:
                problems.append(f"need 0 <= min_weight <= max_weight <= 1, got {low}, {high}")
            if not 0 < move <= 1:
                problems.append(f"max_move_fraction must be in (0, 1], got {move}")
            if not 0 <= band < 1:
                problems.append(f"hysteresis must be in [0, 1), got {band}")
        if self.min_interval_ns < 0:
            problems.append(f"min_interval_ns must be >= 0, got {self.min_interval_ns}")
        if self.max_reallocations_per_day < 1:
            problems.append("max_reallocations_per_day must be >= 1")
        if self.min_transfer < 1:
            problems.append(f"min_transfer must be >= 1 money unit, got {self.min_transfer}")
        if problems:
            raise ValueError("allocator config: " + "; ".join(problems))

    @property
    def weight_bounds(self) -> tuple[Fraction, Fraction]:
        return Fraction(self.min_weight), Fraction(self.max_weight)

    @property
    def move_fraction(self) -> Fraction:
        return Fraction(self.max_move_fraction)

    @property
    def band(self) -> Fraction:
        return Fraction(self.hysteresis)


# -- scoring --------------------------------------------------------------------------------
class PoolSample(msgspec.Struct, frozen=True, array_like=True):
    """A pool at one round: kernel time, equity at the marks and net transfers in (money
    units). ``equity - transfers`` moves only with the strategy's own performance."""

    ts: int
    equity: int
    transfers: int


Scorer = Callable[[str, Sequence[PoolSample]], float]
"""``scorer(strategy, samples)``: a score from the pool's last ``window + 1`` samples."""


def return_over_drawdown(drawdown_floor: float = 0.01) -> Scorer:
    """The default scorer: the window's return divided by its max drawdown (floored).

    Returns are net of transfers (``Δ(equity - transfers) / previous equity``), compounded;
    the drawdown is the deepest fall of that compounded path from its running peak.
    """

    def score(_strategy: str, samples: Sequence[PoolSample]) -> float:
        growth = 1.0
        peak = 1.0
        drawdown = 0.0
        for before, after in pairwise(samples):
            if before.equity <= 0:
                return math.nan  # a pool with no equity has no meaningful return
            earned = (after.equity - after.transfers) - (before.equity - before.transfers)
            growth *= 1.0 + earned / before.equity
            peak = max(peak, growth)
            drawdown = max(drawdown, 1.0 - growth / peak)
        return (growth - 1.0) / max(drawdown, drawdown_floor)

    return score


def bounded_weights(
    raw: Mapping[str, Fraction], low: Fraction, high: Fraction
) -> dict[str, Fraction]:
    """Weights proportional to ``raw`` (>= 0), each within ``[low, high]``, summing to 1.

    Names that would break a bound are fixed at it and the rest share what is left, until
    none does (exact fractions; sorted names, so the result is deterministic). Bounds that
    cannot hold for this many names are widened to ``1/n``.
    """
    names = sorted(raw)
    if not names:
        return {}
    share = Fraction(1, len(names))
    low, high = min(low, share), max(high, share)
    fixed: dict[str, Fraction] = {}
    free = list(names)
    while free:
        left = 1 - sum(fixed.values(), Fraction(0))
        total = sum((raw[n] for n in free), Fraction(0))
        weights = {n: left * raw[n] / total if total else left / len(free) for n in free}
        over = [n for n in free if weights[n] > high]
        under = [n for n in free if weights[n] < low]
        if not over and not under:
            fixed.update(weights)
            break
        for name in over or under:
            fixed[name] = high if over else low
            free.remove(name)
    residual = 1 - sum(fixed.values(), Fraction(0))
    for name in names:  # only when every name was fixed: hand out what is left in bounds
        if not residual:
            break
        room = (high - fixed[name]) if residual > 0 else (low - fixed[name])
        step = min(residual, room) if residual > 0 else max(residual, room)
        fixed[name] += step
        residual -= step
    return {name: fixed[name] for name in names}


def _weight(weight: Fraction) -> str:
    """A weight for the journal and messages: 6 decimals (the weight itself stays exact)."""
    return f"{float(weight):.6f}"


# -- the allocator --------------------------------------------------------------------------
Publish = Callable[[Event], None]
Marks = Callable[[], Mapping[str, int] | None]


class Allocator:
    """Scores strategies each round and moves capital between their pools.

    Build it with its config (and optionally a custom ``scorer``), then :meth:`bind` it to a
    node's pools (``predator.node.governance.attach_allocator`` does, and schedules
    :meth:`run_round` on the kernel's scheduler).

    >>> allocator = Allocator(AllocatorConfig(window=10, max_weight="0.7"))
    >>> # attach_allocator(kernel, allocator, interval_ns=DAY_NS)
    """

    def __init__(self, config: AllocatorConfig | None = None, *, scorer: Scorer | None = None):
        self.config = config or AllocatorConfig()
        self.scorer: Scorer = scorer or return_over_drawdown(self.config.drawdown_floor)
        self.samples: dict[str, list[PoolSample]] = {}
        self.previous_scores: dict[str, float] = {}
        """Each strategy's last finite, in-range score (the jump check's reference)."""
        self.reallocation_times: list[int] = []
        self.rounds = 0
        self.reallocations = 0
        self.rejections = 0
        self.throttles: dict[str, int] = {}
        self._clock: Clock | None = None
        self._publish: Publish | None = None
        self._portfolios: Mapping[str, Portfolio] = {}
        self._transfers: CapitalTransfers | None = None
        self._marks: Marks = lambda: None
        self._eligible: Callable[[str], bool] = lambda _name: True
        self._halted: Callable[[], str | None] = lambda: None

    def bind(
        self,
        *,
        clock: Clock,
        publish: Publish,
        portfolios: Mapping[str, Portfolio],
        transfers: CapitalTransfers,
        marks: Marks,
        eligible: Callable[[str], bool] | None = None,
        halted: Callable[[], str | None] | None = None,
    ) -> None:
        """Connect to a node: its clock, bus, pools by strategy name, transfer service,
        current marks (``None`` before any price), which strategies may take part, and
        whether trading is halted (a reason, or ``None``)."""
        self._clock = clock
        self._publish = publish
        self._portfolios = portfolios
        self._transfers = transfers
        self._marks = marks
        if eligible is not None:
            self._eligible = eligible
        if halted is not None:
            self._halted = halted

    # -- restart ------------------------------------------------------------------------
    def restore(self, records: Sequence[JournalRecord]) -> None:
        """Rebuild the allocator from a journal (after a crash): the times of recent
        reallocations and the last accepted scores, so a restart cannot reset the daily
        limit, and the equity window from the journaled ``AllocatorSampled`` rounds, so a
        restart does not start the window again.

        Reads from the newest record back and stops once the window is full and the guard
        has what it needs (the last ``max_reallocations_per_day + 1`` reallocations, or
        none older than a day and the minimum interval): a campaign restarts often on a
        long journal.
        """
        config = self.config
        window = config.window + 1
        keep = config.max_reallocations_per_day + 1
        reach = max(DAY_NS, config.min_interval_ns)
        rounds: list[JournalRecord] = []
        times: list[int] = []
        scores: dict[str, float] = {}
        horizon: int | None = None
        for record in reversed(records):
            if horizon is None:
                horizon = record.ts - reach
            if len(rounds) >= window and (len(times) >= keep or record.ts < horizon):
                break
            if not isinstance(record.payload, dict):
                continue
            if record.type == "AllocatorSampled":
                if len(rounds) < window:
                    rounds.append(record)
            elif record.type == "CapitalReallocated" and len(times) < keep:
                times.append(record.ts)
                for name, score in (record.payload.get("scores") or {}).items():
                    if isinstance(score, int | float) and math.isfinite(score):
                        scores.setdefault(str(name), float(score))  # the newest wins
        for record in reversed(rounds):
            equity = record.payload.get("equity") or {}
            transfers = record.payload.get("transfers") or {}
            for name, value in equity.items():
                history = self.samples.setdefault(str(name), [])
                history.append(PoolSample(record.ts, int(value), int(transfers.get(name, 0))))
                del history[:-window]
        self.reallocation_times.extend(reversed(times))
        self.previous_scores.update(scores)
        self.reallocations = len(self.reallocation_times)

    @property
    def last_sampled(self) -> int | None:
        """Kernel time of the newest sample (journaled or taken), if any."""
        return max((h[-1].ts for h in self.samples.values() if h), default=None)

    # -- one round ----------------------------------------------------------------------
    def run_round(self) -> CapitalReallocated | None:
        """Sample, score, check, and maybe reallocate; returns the reallocation, if any."""
        clock, publish, transfers = self._clock, self._publish, self._transfers
        if clock is None or publish is None or transfers is None:
            raise RuntimeError("bind the allocator to a node before running it")
        self.rounds += 1
        now = clock.now_ns()
        marks = self._marks()
        if marks is None:
            return None  # no price yet: nothing to value the pools at
        names = sorted(self._portfolios)
        equity: dict[str, int] = {}
        window = self.config.window + 1
        for name in names:
            portfolio = self._portfolios[name]
            equity[name] = portfolio.equity(marks)
            history = self.samples.setdefault(name, [])
            history.append(PoolSample(now, equity[name], portfolio.transfers))
            del history[:-window]
        publish(
            AllocatorSampled(
                ts=now,
                equity=dict(equity),
                transfers={n: self._portfolios[n].transfers for n in names},
            )
        )
        halted = self._halted()
        if halted is not None:
            return self._throttled(now, "halted", halted)
        eligible = [n for n in names if self._eligible(n)]
        if len(eligible) < 2 or any(len(self.samples[n]) < window for n in eligible):
            return None  # warming up, or nobody to move capital between
        scores = self._scores(now, eligible)
        if scores is None:
            return None
        total = sum(equity[n] for n in eligible)
        if total <= 0:
            return self._throttled(now, "no_free_cash", f"pools' equity is {total}")
        low, high = self.config.weight_bounds
        raw = {n: Fraction(max(scores[n], 0.0)) for n in eligible}
        targets = bounded_weights(raw, low, high)
        drift = max(abs(targets[n] - Fraction(equity[n], total)) for n in eligible)
        if drift < self.config.band:
            return self._throttled(
                now,
                "hysteresis",
                f"largest weight change {float(drift):.4f} is inside the band"
                f" {self.config.hysteresis}",
            )
        recent = [t for t in self.reallocation_times if now - t < DAY_NS]
        last = self.reallocation_times[-1] if self.reallocation_times else None
        if last is not None and now - last < self.config.min_interval_ns:
            return self._throttled(
                now,
                "min_interval",
                f"last reallocation {(now - last) // 1_000_000_000}s ago, minimum"
                f" {self.config.min_interval_ns // 1_000_000_000}s",
            )
        if len(recent) >= self.config.max_reallocations_per_day:
            return self._throttled(
                now,
                "daily_limit",
                f"{len(recent)} reallocations in the last 24h, limit"
                f" {self.config.max_reallocations_per_day}",
            )
        made = self._move(now, eligible, equity, targets, total)
        if not made:
            return self._throttled(
                now, "no_free_cash", "no pool above its target has free cash to move"
            )
        self.reallocation_times.append(now)
        del self.reallocation_times[: -self.config.max_reallocations_per_day - 1]
        self.reallocations += 1
        event = CapitalReallocated(
            ts=now,
            scores={n: scores[n] for n in eligible},
            targets={n: _weight(targets[n]) for n in eligible},
            transfers=len(made),
            moved=sum(t.amount for t in made),
        )
        publish(event)
        return event

    def _scores(self, now: int, names: Sequence[str]) -> dict[str, float] | None:
        """Every strategy's score, or ``None`` (after journaling each rejection)."""
        assert self._publish is not None
        config = self.config
        scores: dict[str, float] = {}
        rejected: list[ScoreRejected] = []
        for name in names:
            try:
                score = float(self.scorer(name, list(self.samples[name])))
            except (ArithmeticError, TypeError, ValueError) as exc:
                score, reason = math.nan, f"not_finite: the scorer failed ({exc!r})"
            else:
                reason = ""
            previous = self.previous_scores.get(name)
            if reason:
                pass
            elif not math.isfinite(score):
                reason = "not_finite: the score is not a finite number"
            elif abs(score) > config.score_bound:
                reason = f"out_of_range: |score| > {config.score_bound:g}"
            else:
                self.previous_scores[name] = score
                if previous is not None and abs(score - previous) > config.max_score_jump:
                    reason = (
                        f"jump: {previous:.6g} -> {score:.6g} moves more than"
                        f" {config.max_score_jump:g} in one round"
                    )
            if reason:
                rejected.append(
                    ScoreRejected(ts=now, strategy=name, score=repr(score), reason=reason)
                )
            else:
                scores[name] = score
        for event in rejected:
            self.rejections += 1
            self._publish(event)
        return None if rejected else scores

    def _move(
        self,
        now: int,
        names: Sequence[str],
        equity: Mapping[str, int],
        targets: Mapping[str, Fraction],
        total: int,
    ) -> list[CapitalTransferred]:
        """Transfers from pools above their target (free cash only) to pools below it."""
        assert self._transfers is not None
        transfers = self._transfers
        accounts = {n: self._portfolios[n].account for n in names}
        budget = math.floor(total * self.config.move_fraction)
        minimum = self.config.min_transfer
        free: dict[str, int] = {}
        needs: dict[str, int] = {}
        for name in names:
            delta = math.floor(targets[name] * total) - equity[name]
            if delta < 0:
                movable = min(-delta, transfers.transferable(accounts[name]))
                if movable >= minimum:
                    free[name] = movable
            elif delta >= minimum:
                needs[name] = delta
        givers = sorted(free, key=lambda n: (-free[n], n))
        made: list[CapitalTransferred] = []
        for taker in sorted(needs, key=lambda n: (-needs[n], n)):
            for giver in givers:
                amount = min(free[giver], needs[taker], budget)
                if amount < minimum:
                    continue
                result = transfers.transfer(
                    accounts[giver],
                    accounts[taker],
                    amount,
                    reason=(
                        f"allocator: target weights {giver} {_weight(targets[giver])},"
                        f" {taker} {_weight(targets[taker])}"
                    ),
                    actor="allocator",
                )
                if isinstance(result, CapitalTransferred):
                    made.append(result)
                    free[giver] -= amount
                    needs[taker] -= amount
                    budget -= amount
        return made

    def _throttled(self, now: int, reason: str, detail: str) -> CapitalReallocated | None:
        """Journal why this round does not reallocate; the round's answer is ``None``."""
        assert self._publish is not None
        self.throttles[reason] = self.throttles.get(reason, 0) + 1
        recent = sum(1 for t in self.reallocation_times if now - t < DAY_NS)
        self._publish(
            AllocationThrottled(ts=now, reason=reason, detail=detail, reallocations_today=recent)
        )
        return None

    def report(self) -> dict[str, Any]:
        """Counts for a run summary: rounds, reallocations, rejections, throttles by reason."""
        return {
            "rounds": self.rounds,
            "reallocations": self.reallocations,
            "scores_rejected": self.rejections,
            "throttled": dict(sorted(self.throttles.items())),
            "scores": dict(sorted(self.previous_scores.items())),
        }
