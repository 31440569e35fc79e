"""The automated operator: brings the system back after a halt once its cause has cleared.

A campaign has no human at the console. ``AutoOperator`` looks at the node after every
bar, like an on-call engineer watching the status page: a tripped kill switch, a halted
execution, a stopped strategy. After a cool-off, when the cause has cleared (market data
fresh and valid, reconciliation clean since the trip, the CRO heartbeat back), it
approves the resumption through the system's own controls (``OperatorApproved`` then
``KillSwitchReset``, ``ExecutionResumed``, :class:`StrategyRestarted`), every step
journaled with ``actor="auto-operator"`` and a reason. A strategy killed for its own
misbehaviour stays dead; one that keeps raising is restarted only within a budget.
The operator is its own process: its memory survives node crashes (``bind`` again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from predator.campaign.events import StrategyRestarted
from predator.execution.heartbeat import ResumeRefused
from predator.node.recovery import RecoveryRefused, refuse_unaudited
from predator.risk.emergency_stop import NotTripped, ResumeNotApproved

if TYPE_CHECKING:
    from predator.node.kernel import Kernel

__all__ = ["ACTOR", "AutoOperator", "OperatorAction", "OperatorPolicy"]

ACTOR = "auto-operator"

NS_PER_SECOND = 1_000_000_000

STRATEGY_FAULT_CHECKS = frozenset(
    {
        "duplicate",
        "rate_limit",
        "engine_rate_limit",
        "order_size",
        "order_notional",
        "position_limit",
        "engine_position_limit",
        "exposure",
        "price_band",
    }
)
"""Risk denials caused by a strategy's own behaviour (the risk engine's list)."""


def _audit_refusal(kernel: Kernel) -> str | None:
    """Why a restarted node would refuse this journal (its audit gate), or ``None``."""
    try:
        refuse_unaudited(list(kernel.journal.records()))
    except RecoveryRefused as exc:
        return f"no restart: {exc}"
    return None


class OperatorPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """When the automated operator may bring something back.

    ``cooloff_ns``: wait at least this long after a halt. ``fresh_data_ns``: market data
    younger than this counts as back. ``restart_budget`` restarts of one failing strategy
    per ``budget_window_ns``; beyond it the strategy stays stopped (quarantined) until
    the window has room again. ``faulty``: strategies
    never brought back after their own kill switch; ``faulty_denials``: a strategy with
    this many denials for its own behaviour counts as faulty too.
    """

    cooloff_ns: int = 900 * NS_PER_SECOND
    fresh_data_ns: int = 120 * NS_PER_SECOND
    restart_budget: int = 3
    budget_window_ns: int = 86_400 * NS_PER_SECOND
    faulty: frozenset[str] = frozenset()
    faulty_denials: int = 10
    restart_after_ns: int = 3600 * NS_PER_SECOND
    """A reconciliation mismatch still there after this long: restart the node, which
    rebuilds from the journal and re-syncs with the venue (what an on-call engineer
    would do); at most once per halt."""


class OperatorAction(msgspec.Struct, frozen=True, kw_only=True):
    """One decision of the operator, for the campaign report."""

    ts: int
    action: str
    """``resume`` (kill switch), ``resume_execution``, ``restart_strategy``, ``quarantine``
    (restart budget used up: it waits for room), ``leave_dead``, ``restart_node``,
    ``stay_halted``."""
    target: str
    reason: str
    halted_since: int | None = None


class AutoOperator:
    """Watches one node at a time and resumes what may resume (see the module docstring).

    >>> operator = AutoOperator(OperatorPolicy(faulty=frozenset({"flood"})))  # doctest: +SKIP
    >>> operator.bind(kernel); operator.on_bar(bar.ts)  # doctest: +SKIP
    """

    def __init__(self, policy: OperatorPolicy) -> None:
        self.policy = policy
        self.kernel: Kernel | None = None
        self.actions: list[OperatorAction] = []
        self.dead: dict[str, str] = {}
        """Strategies the operator leaves stopped for good, with why."""
        self._restarts: dict[str, list[int]] = {}
        self._running: dict[str, bool] = {}
        """What the operator last saw: strategy -> running (its memory across crashes)."""
        self._stopped_since: dict[str, int] = {}
        self._recon_mark: dict[str, tuple[int, int]] = {}
        self._exec_halted_since: int | None = None
        self.restart_requested: str | None = None
        """Set when the operator wants the node restarted (the campaign does it)."""
        self._restarted_for: set[int] = set()
        self._quarantined: set[str] = set()
        self.audit: Callable[[Kernel], str | None] = _audit_refusal
        """Why a restarted node would refuse the journal, or ``None`` (the campaign sets
        its incremental audit here)."""

    # -- binding ------------------------------------------------------------------------
    def bind(self, kernel: Kernel) -> None:
        """Watch ``kernel`` (a fresh one after a crash: what ran before runs again)."""
        self.kernel = kernel
        now = kernel.clock.now_ns()
        for name, runner in kernel.runners.items():
            was_running = self._running.get(name, True)
            revive = runner.stopped is not None and was_running and name not in self.dead
            # Recovery replays the journaled stop; the operator's restart came after it.
            if revive and self._covering_trip(kernel, name) is None:
                reason = "it was running before the node crashed"
                self._restart(kernel, name, reason, now, started=True)
        self._recon_mark.clear()

    # -- the watch ------------------------------------------------------------------------
    def on_bar(self, now: int) -> None:
        """Look at the node once (after a bar) and act on what may resume."""
        kernel = self.kernel
        if kernel is None:
            return
        tripped = kernel.kill_switch.tripped_scopes()
        halted = kernel.execution.halted
        runners = kernel.runners
        idle = not tripped and halted is None and not self._stopped_since
        if idle and all(runner.stopped is None for runner in runners.values()):
            return
        if halted is not None:
            self._execution(kernel, now)
        elif self._exec_halted_since is not None:
            self._exec_halted_since = None
        for scope in tripped:
            self._kill_switch(kernel, scope, now)
        for name, runner in runners.items():
            if runner.stopped is None:
                self._running[name] = True
                self._stopped_since.pop(name, None)
                continue
            self._running[name] = False
            self._stopped_since.setdefault(name, now)
            self._strategy(kernel, name, runner.stopped, now)

    # -- causes -----------------------------------------------------------------------------
    def _data_back(self, kernel: Kernel, now: int) -> str | None:
        """Why market data is not back yet, or ``None`` when it is fresh and valid."""
        risk = kernel.risk
        symbol = kernel.instrument.symbol
        if symbol in risk.invalid_data:
            return f"market data invalid: {risk.invalid_data[symbol]}"
        last = risk.last_data_ts.get(symbol)
        if last is None or now - last > self.policy.fresh_data_ns:
            return "market data not fresh"
        return None

    def _reconciled_since(self, kernel: Kernel, scope: str) -> bool:
        """A reconciliation check ran after the trip was first seen and found nothing."""
        recon = kernel.reconciliation
        mark = self._recon_mark.setdefault(scope, (recon.checks, len(recon.mismatches)))
        if len(recon.mismatches) != mark[1]:
            self._recon_mark[scope] = (recon.checks, len(recon.mismatches))
            return False
        return recon.checks > mark[0]

    def _execution(self, kernel: Kernel, now: int) -> None:
        since = self._exec_halted_since
        if since is None:
            self._exec_halted_since = since = now
        if now - since < self.policy.cooloff_ns or self._data_back(kernel, now) is not None:
            return
        execution = kernel.execution
        if not execution.cro_alive():
            return
        reason = f"CRO heartbeat back after {execution.halted}; data fresh"
        try:
            execution.resume(actor=ACTOR, reason=reason)
        except ResumeRefused:
            return
        self._exec_halted_since = None
        self._log(now, "resume_execution", "execution", reason, since)

    def _kill_switch(self, kernel: Kernel, scope: str, now: int) -> None:
        switch = kernel.kill_switch
        trip = switch.trip_of(scope)
        if trip is None:
            return
        kind, _, name = scope.partition(":")
        if kind == "strategy" and name in self.dead:
            return
        if kind == "strategy" and trip.trigger == "breaker_trips":
            faulty = self._faulty(kernel, name)
            if faulty is not None:
                self._leave_dead(now, name, f"killed for its own behaviour: {faulty}", trip.ts)
                return
        if now - trip.ts < self.policy.cooloff_ns:
            return
        blocked = self._data_back(kernel, now)
        if blocked is not None:
            return
        if not self._reconciled_since(kernel, scope):
            stuck = now - trip.ts >= self.policy.restart_after_ns
            mismatch = trip.trigger == "reconciliation_mismatch"
            if stuck and mismatch and trip.ts not in self._restarted_for:
                self._restarted_for.add(trip.ts)
                refused = self.audit(kernel)
                if refused is not None:  # a restart would refuse to start: stay halted
                    self._log(now, "stay_halted", scope, refused, trip.ts)
                    return
                self.restart_requested = (
                    f"reconciliation mismatch unresolved for {(now - trip.ts) // NS_PER_SECOND}s"
                    f" ({trip.reason[:120]}): restart to rebuild from the journal and the venue"
                )
                self._log(now, "restart_node", "node", self.restart_requested, trip.ts)
            return
        if kernel.execution.halted is not None:
            return  # the heartbeat first: resuming into a halted execution helps nobody
        reason = (
            f"{trip.trigger} trip of {scope} ({trip.reason}) cleared after "
            f"{(now - trip.ts) // NS_PER_SECOND}s: data fresh, reconciliation clean"
        )
        try:
            switch.approve(scope, ACTOR, reason)
            switch.reset(scope, ACTOR, reason)
        except (NotTripped, ResumeNotApproved):
            return
        self._recon_mark.pop(scope, None)
        self._log(now, "resume", scope, reason, trip.ts)

    def _faulty(self, kernel: Kernel, name: str) -> str | None:
        """Why ``name`` counts as faulty (its own misbehaviour), or ``None``."""
        if name in self.policy.faulty:
            return "a deliberately faulty strategy"
        record = kernel.risk.strategies.get(name)
        if record is None:
            return None
        own = sum(n for check, n in record.denied_by.items() if check in STRATEGY_FAULT_CHECKS)
        if own >= self.policy.faulty_denials:
            return f"{own} orders denied for its own behaviour"
        return None

    def _strategy(self, kernel: Kernel, name: str, stopped: str, now: int) -> None:
        if name in self.dead:
            return
        if self._covering_trip(kernel, name) is not None:
            return  # the kill switch decides first
        since = self._stopped_since.get(name, now)
        if self._is_kill(stopped):
            self._restart(kernel, name, f"its kill switch was reset ({stopped})", now)
            return
        if stopped.startswith("raised in"):
            history = [
                ts for ts in self._restarts.get(name, []) if now - ts < self.policy.budget_window_ns
            ]
            if len(history) >= self.policy.restart_budget:
                # Quarantined, not buried: it comes back once the window has room again.
                if name not in self._quarantined:
                    self._quarantined.add(name)
                    self._log(
                        now,
                        "quarantine",
                        f"strategy:{name}",
                        f"{stopped}; already restarted {len(history)} times within the "
                        f"budget window: next try at {history[0] + self.policy.budget_window_ns}",
                        since,
                    )
                return
            self._quarantined.discard(name)
            if now - since < self.policy.cooloff_ns or self._data_back(kernel, now) is not None:
                return
            self._restart(kernel, name, f"restart after it {stopped}", now)
            return
        # Finished or stopped for another reason: not the operator's business.

    # -- actions ------------------------------------------------------------------------
    @staticmethod
    def _is_kill(stopped: str) -> bool:
        return stopped.startswith("kill switch ")

    @staticmethod
    def _covering_trip(kernel: Kernel, name: str) -> str | None:
        switch = kernel.kill_switch
        engine = next(slot.engine for slot in kernel.slots if slot.name == name)
        for scope in ("global", f"engine:{engine}", f"strategy:{name}"):
            if switch.is_tripped(scope):
                return scope
        return None

    def _restart(
        self, kernel: Kernel, name: str, reason: str, now: int, *, started: bool = False
    ) -> None:
        """Start ``name`` again; ``started``: recovery already started and re-warmed it."""
        runner = kernel.runners[name]
        since = self._stopped_since.pop(name, None)
        runner.stopped = None
        if not started:
            runner.start()
        kernel.bus.publish(StrategyRestarted(ts=now, strategy=name, actor=ACTOR, reason=reason))
        if not started:  # bringing back what ran before a crash is not a restart
            self._restarts.setdefault(name, []).append(now)
        self._running[name] = runner.stopped is None
        self._log(now, "restart_strategy", f"strategy:{name}", reason, since)

    def _leave_dead(self, now: int, name: str, reason: str, since: int | None) -> None:
        self.dead[name] = reason
        self._log(now, "leave_dead", f"strategy:{name}", reason, since)

    def _log(self, now: int, action: str, target: str, reason: str, since: int | None) -> None:
        self.actions.append(
            OperatorAction(ts=now, action=action, target=target, reason=reason, halted_since=since)
        )

    def report(self) -> dict[str, Any]:
        """Counts of the operator's decisions and the strategies it left dead."""
        counts: dict[str, int] = {}
        for action in self.actions:
            counts[action.action] = counts.get(action.action, 0) + 1
        return {"actions": dict(sorted(counts.items())), "dead": dict(sorted(self.dead.items()))}
