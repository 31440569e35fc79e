"""A campaign: the whole node under chaos for simulated days, judged by pass/fail gates.

``Campaign(config).run()`` builds the bars (real data, block-bootstrapped, market
scenarios applied), the node (two engines, the campaign risk profile, ledger,
invariants, snapshots, post-mortems), the chaos engine and the automated operator, runs
the bar loop (crashing and restarting the node when chaos asks), then reads the journal
back and computes the metrics, the gates and the reports. A campaign is a pure function
of its config: the same seed gives the same journal digest.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from predator.campaign.config import CampaignConfig
from predator.campaign.data import CampaignData, build_feed
from predator.campaign.final_check import final_check
from predator.campaign.gates import GateResult, evaluate_gates, verdict_of
from predator.campaign.lifecycle import CampaignNode
from predator.campaign.metrics import compute_metrics, incidents_of
from predator.campaign.observer import EquityObserver
from predator.campaign.operator import AutoOperator, OperatorPolicy
from predator.campaign.profile import CAMPAIGN_RISK, FAULTY_STRATEGIES
from predator.campaign.scenario_check import judge_scenarios
from predator.chaos import ChaosBus, ChaosEngine, PlannedFault, ScenarioStarted
from predator.ledger.journal import JournalRecord
from predator.node.backtest import BacktestConfig, _finish_run
from predator.node.recovery import RecoveryRefused
from predator.validation.audit import audit

__all__ = ["Campaign", "CampaignResult", "ProgressCallback"]

NS_PER_SECOND = 1_000_000_000

ProgressCallback = Callable[[int, int, dict[str, Any]], None]
"""``progress(done_bars, total_bars, stats)``; stats: ``ts`` (simulated), ``events``,
``incidents``, ``crashes``."""


class CampaignResult(msgspec.Struct, kw_only=True):
    """A finished campaign: verdict, gates, metrics, incidents and where its files are."""

    config: CampaignConfig
    verdict: str
    gates: list[GateResult]
    metrics: dict[str, Any]
    scenarios: dict[str, Any]
    incidents: list[dict[str, Any]]
    journal_digest: str
    journal_events: int
    chaos_log: list[dict[str, Any]]
    operator: dict[str, Any]
    equity: dict[str, Any]
    fatal: str | None = None
    files: dict[str, str] = {}

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    def failures(self) -> list[GateResult]:
        """The gates that failed."""
        return [gate for gate in self.gates if gate.status == "FAIL"]

    def summary(self) -> dict[str, Any]:
        """The JSON report (``predator campaign --json``)."""
        config = self.config
        return {
            "verdict": self.verdict,
            "seed": config.seed,
            "days": config.days,
            "chaos": config.chaos,
            "metrics": self.metrics,
            "scenarios": self.scenarios,
            "journal_digest": self.journal_digest,
            "journal_events": self.journal_events,
            "gates": [msgspec.to_builtins(gate) for gate in self.gates],
            "incidents": self.incidents,
            "operator": self.operator,
            "fatal": self.fatal,
            "reproduce": config.command(),
            "config": msgspec.to_builtins(config),
            "files": self.files,
        }


class Campaign:
    """One campaign run (see the module docstring).

    >>> result = Campaign(CampaignConfig(days=3, chaos="medium", seed=1)).run()  # doctest: +SKIP
    >>> result.verdict, result.journal_digest  # doctest: +SKIP
    """

    def __init__(
        self,
        config: CampaignConfig,
        *,
        progress: ProgressCallback | None = None,
        progress_every: int = 1440,
    ) -> None:
        self.config = config
        self._progress = progress
        self._progress_every = progress_every
        self._events_before = 0
        self._index = 0
        self.unplanned: list[str] = []
        """Unhandled errors the node died of (each restarted like a crash)."""

    def run(self) -> CampaignResult:
        """Run the campaign to its last bar and judge it."""
        config = self.config.validated()
        chaos_config = config.chaos_config()
        data = build_feed(config, chaos_config)
        out_dir = None if config.out_dir is None else Path(config.out_dir)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        gc.freeze()  # the data lives through the run: keep the collector off it
        try:
            return self._run(config, data, out_dir)
        finally:
            gc.unfreeze()

    def _backtest_config(self, config: CampaignConfig) -> BacktestConfig:
        return BacktestConfig(
            strategies=config.strategies,
            cash=config.cash,
            commission=config.commission,
            sizing=config.sizing,
            risk=CAMPAIGN_RISK if config.risk is None else config.risk,
            check_invariants=config.invariants,
        )

    def _run(
        self, config: CampaignConfig, data: CampaignData, out_dir: Path | None
    ) -> CampaignResult:
        feed = data.feed
        bars = list(feed)
        backtest = self._backtest_config(config)
        chaos_bus = ChaosBus()
        for scenario in data.scenarios:
            chaos_bus.publish(
                ScenarioStarted(ts=scenario.start_ts, scenario=scenario.name, group=scenario.group)
            )
        names = [spec.name or spec.strategy for spec in config.strategies]
        chaos = ChaosEngine(
            config.chaos_config(),
            seed=config.seed,
            start_ns=feed.first_ts,
            end_ns=feed.last_ts,
            targets=names,
        )
        if data.faults:  # the fault scenarios join the plan
            chaos.plan.extend(data.faults)
            chaos.plan.sort(key=lambda f: (f.at_ns, -f.priority, f.kind, f.fault_id))
        operator = AutoOperator(
            OperatorPolicy(cooloff_ns=config.cooloff_s * NS_PER_SECOND, faulty=FAULTY_STRATEGIES)
        )
        node = CampaignNode(
            feed=feed,
            bars=bars,
            config=backtest,
            chaos=chaos,
            chaos_bus=chaos_bus,
            operator=operator,
            seed=config.seed,
            out_dir=out_dir,
            snapshot_every=config.snapshot_every,
            journal_batch=config.journal_batch,
            postmortems=config.postmortems,
            reconciliation=config.reconciliation,
            governance=config.governance_config(),
        )
        kernel = node.start()
        engines = {slot.name: slot.engine for slot in kernel.slots}
        observer = EquityObserver(engines, len(bars))
        fatal = self._loop(node, bars, observer)
        kernel = node.kernel
        if fatal is None:
            try:
                if node.crash is not None:  # down at the end: it comes back to finish
                    kernel = node.restart(len(bars))
                    kernel.bus.publish(bars[-1])
                injector = node.injector
                for fault_id in sorted(injector.active):  # the campaign is over: so is chaos
                    injector.clear(fault_id)
                injector.uninstall()
                _finish_run(kernel, backtest, node.journal, None, len(bars))
            except Exception as exc:  # reported as the campaign's fatal finding
                fatal = f"the node died finishing the run: {type(exc).__name__}: {exc}"
        mismatches = final_check(kernel) if node.crash is None else []
        records, digest = node.read_back()
        return self._judge(
            config, data, records, digest, chaos_bus, chaos, node, operator, observer,
            mismatches, fatal, out_dir,
        )  # fmt: skip

    def _loop(self, node: CampaignNode, bars: list[Any], observer: EquityObserver) -> str | None:
        """The bar loop; returns why the node died for good, or ``None``.

        A node that raises (an unhandled error: a failing journal commit, a violated
        invariant) dies like a crashed process and is restarted the same way.
        """
        total = len(bars)
        progress = self._progress
        restart_ns = self.config.restart_s * NS_PER_SECOND
        index = 0
        while index < total:
            try:
                index = self._bars(node, bars, index, observer, restart_ns)
            except RecoveryRefused as exc:
                return f"the node could not be recovered: {exc}"
            except Exception as exc:  # the node process dies of it; the supervisor restarts it
                error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                if node.crash is not None:
                    return f"the node died while restarting: {error}"
                self.unplanned.append(error)
                self._die(node, restart_ns)
                index = self._index + 1  # the bar it died on is the venue's: go on after it
            if progress is not None and index < total:
                progress(index, total, self._stats(node, bars[index - 1].ts))
        if progress is not None:
            progress(total, total, self._stats(node, bars[-1].ts))
        return None

    def _die(self, node: CampaignNode, restart_ns: int) -> None:
        kernel = node.kernel
        self._events_before += kernel.bus.published
        fault = PlannedFault(
            at_ns=kernel.clock.now_ns(),
            fault_id=f"unhandled-{len(self.unplanned)}",
            kind="process_crash",
            target="node",
            duration_ns=0,
            params={"error": self.unplanned[-1][:200]},
        )
        node.crash_now(fault, restart_ns, planned=False)
        kernel.exchange.connect(_deaf)

    def _bars(
        self,
        node: CampaignNode,
        bars: list[Any],
        index: int,
        observer: EquityObserver,
        restart_ns: int,
    ) -> int:
        """Run bars from ``index`` until the next progress report; returns the next index."""
        every = self._progress_every
        operator = node.operator
        kernel = node.kernel
        stop = min(len(bars), (index // every + 1) * every)
        while index < stop:
            self._index = index
            bar = bars[index]
            ts = bar.ts
            if node.crash is None:
                self._run_due(node, kernel, ts, restart_ns)
            if node.crash is not None:
                restarted = ts >= node.crash.restart_at
                if restarted:
                    kernel = node.restart(index)
                    if index > 0:
                        kernel.bus.publish(bars[index - 1])
                    # What the restart scheduled before this bar runs before it.
                    restarted = not self._run_due(node, kernel, ts, restart_ns)
                if not restarted:
                    kernel.clock.set(ts)  # the venue lives on: it matches alone
                    kernel.exchange.on_bar(bar)
                    index += 1
                    continue
            kernel.clock.set(ts)
            kernel.bus.publish(bar)
            kernel.risk.heartbeat()  # the CRO's heartbeat timer (live mode has one)
            operator.on_bar(ts)
            observer.sample(kernel, ts, bar.close)
            index += 1
            if operator.restart_requested is not None:
                self._events_before += kernel.bus.published
                node.shut_down(operator.restart_requested)
                operator.restart_requested = None
                kernel.exchange.connect(_deaf)
        return index

    def _run_due(self, node: CampaignNode, kernel: Any, ts: int, restart_ns: int) -> bool:
        """Run the node's scheduled work due by ``ts``; True if chaos crashed it."""
        scheduler = kernel.scheduler
        next_time = scheduler.next_time
        if next_time is None or next_time > ts:
            return False
        while next_time is not None and next_time <= ts:
            scheduler.step()
            if node.injector.crash_requested is not None:
                break
            next_time = scheduler.next_time
        fault = node.injector.crash_requested
        if fault is None:
            return False
        self._events_before += kernel.bus.published
        node.crash_now(fault, restart_ns)
        kernel.exchange.connect(_deaf)
        return True

    def _stats(self, node: CampaignNode, ts: int) -> dict[str, Any]:
        kernel = node.kernel
        return {
            "ts": ts,
            "events": self._events_before + kernel.bus.published,
            "incidents": kernel.kill_switch_trips + len(node.crashes),
            "crashes": len(node.crashes),
        }

    def _judge(
        self,
        config: CampaignConfig,
        data: CampaignData,
        records: list[JournalRecord],
        digest: str,
        chaos_bus: ChaosBus,
        chaos: ChaosEngine,
        node: CampaignNode,
        operator: AutoOperator,
        observer: EquityObserver,
        mismatches: list[str],
        fatal: str | None,
        out_dir: Path | None,
    ) -> CampaignResult:
        findings = audit(records).findings
        judge_scenarios(chaos_bus, data.scenarios, records)
        chaos_log = [
            {"type": type(event).__name__, **msgspec.to_builtins(event)} for event in chaos_bus.log
        ]
        metrics, scenarios = compute_metrics(
            records=records,
            chaos_log=chaos_log,
            planned=chaos.kinds(),
            findings=findings,
            drawdowns=observer.drawdowns(),
            lost_events=node.lost_events,
            final_mismatches=mismatches,
            start_ts=data.feed.first_ts,
            end_ts=data.feed.last_ts,
            operator=operator,
            bars_simulated=observer.bars,
        )
        gates = evaluate_gates(
            records=records,
            chaos_log=chaos_log,
            findings=findings,
            final_mismatches=mismatches,
            fatal=fatal,
            chaos_active=bool(chaos.plan) or bool(data.scenarios),
            stale_grace_ns=_stale_grace(config),
            end_ts=data.feed.last_ts,
        )
        result = CampaignResult(
            config=config,
            verdict=verdict_of(gates),
            gates=gates,
            metrics=metrics,
            scenarios=scenarios,
            incidents=incidents_of(records, node.postmortem_dir),
            journal_digest=digest,
            journal_events=len(records),
            chaos_log=chaos_log,
            operator=operator.report(),
            equity=observer.export(),
            fatal=fatal,
        )
        if out_dir is not None:
            from predator.campaign.report import write_reports

            result.files = write_reports(result, out_dir, node.journal_path)
        return result


def _stale_grace(config: CampaignConfig) -> int:
    risk = CAMPAIGN_RISK if config.risk is None else config.risk
    seconds = int(risk.get("limits", {}).get("stale_data_seconds", 180))
    return seconds * NS_PER_SECOND


def _deaf(_report: object) -> None:
    """Where the venue's reports go while the node is down: nowhere."""
