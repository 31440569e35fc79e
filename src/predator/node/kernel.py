"""The kernel of a simulation node: every component wired on one bus.

Strategy -> RiskEngine -> ExecutionEngine -> PaperBroker -> PaperExchange, fills back
to each strategy's Portfolio (its capital pool, a venue sub-account) and the one
double-entry Ledger, every state change journaled, the balance equation checked after
each journaled event. Several strategies run side by side, each isolated.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec

from predator.core.bus import MessageBus
from predator.core.clock import TimeWarp
from predator.core.events import Event
from predator.core.scheduler import ScenarioClock
from predator.execution.execution_engine import ExecutionEngine
from predator.execution.order import (
    FillReversed,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from predator.execution.venue_client import PaperBroker
from predator.ledger.journal import Journal
from predator.ledger.ledger import BalanceEquationViolated, Ledger
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.market.status import MarketDataRejected
from predator.node.alerting import KernelAlerts
from predator.node.postmortems import IMMEDIATE_INCIDENTS, PostmortemWriter
from predator.node.risk_settings import RiskSettings
from predator.node.snapshot import CONTROL_EVENTS, take_snapshot
from predator.portfolio.portfolio import Portfolio
from predator.portfolio.stats import EquityCurve
from predator.portfolio.transfers import CapitalTransferred
from predator.risk.circuit_breaker import BreakerStateChanged, CircuitBreaker
from predator.risk.emergency_stop import EmergencyStop, KillSwitchTripped
from predator.risk.pnl_tracker import AllocationRule, ProfitLossTracker
from predator.risk.protections import (
    CooldownPeriod,
    LowProfitLock,
    MaxDrawdownProtection,
    Protection,
    Protections,
    StoplossGuard,
)
from predator.risk.risk_engine import RiskDecision, RiskEngine, SubmitOrder, TradingState
from predator.strategy.api import Sizing, Strategy
from predator.strategy.runner import StrategyRunner
from predator.validation.consistency import (
    ConsistencyChecker,
    InvariantViolated,
    StateInconsistent,
)
from predator.validation.reconciliation import Reconciliation
from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel
from predator.venue.orders import OrderRequest, Side
from predator.venue.paper_exchange import PaperExchange

__all__ = ["Kernel", "StrategySlot"]


class StrategySlot(msgspec.Struct, kw_only=True):
    """One strategy in the kernel: its pool (venue sub-account) and its capital."""

    name: str
    strategy: Strategy
    engine: str
    account: str
    capital: int


def _protections(
    risk: RiskSettings, capital: int, bus: MessageBus, money_precision: int
) -> Protections:
    """The configured protections of one strategy (its pool's capital sizes money rules)."""
    cfg = risk.config.protections
    rules: list[Protection] = [
        MaxDrawdownProtection(
            cfg.max_drawdown.lookback_ns,
            cfg.max_drawdown.max_allowed_drawdown,
            cfg.max_drawdown.stop_ns,
        ),
        StoplossGuard(
            cfg.stoploss_guard.lookback_ns,
            cfg.stoploss_guard.trade_limit,
            cfg.stoploss_guard.stop_ns,
        ),
        LowProfitLock(
            cfg.low_profit.lookback_ns,
            cfg.low_profit.trade_limit,
            int(cfg.low_profit.required_profit * capital),
            cfg.low_profit.stop_ns,
        ),
    ]
    if cfg.cooldown_ns > 0:  # 0 disables the cooldown, as the config documents
        rules.insert(2, CooldownPeriod(cfg.cooldown_ns))
    return Protections(rules, publish=bus.publish, money_precision=money_precision)


def _is_journaled(event_type: type) -> bool:
    return bool(getattr(event_type, "journaled", False))


def _is_write_ahead(event_type: type) -> bool:
    """Facts committed at once: an order about to reach the venue, an incident, a control
    decision (a halt, a resumption, an operator's approval, a stopped or restarted
    strategy): rare, and a restart must not undo them."""
    return (
        issubclass(event_type, OrderSubmitted)
        or event_type.__name__ in IMMEDIATE_INCIDENTS
        or _is_control(event_type)
        or bool(getattr(event_type, "write_ahead", False))
    )


def _is_control(event_type: type) -> bool:
    """Kill switches, trading states, halts, stopped strategies (not breakers: a snapshot
    keeps their exact state)."""
    return issubclass(event_type, CONTROL_EVENTS) and not issubclass(
        event_type, BreakerStateChanged
    )


class Kernel:
    """The components of one simulation run, connected on one bus."""

    def __init__(
        self,
        *,
        instrument: Instrument,
        start_ts: int,
        slots: Sequence[StrategySlot],
        sizing: Sizing,
        commission: CommissionModel,
        fill_model: BarFillModel,
        risk: RiskSettings,
        journal: Journal,
        check_invariants: bool = True,
        profit_allocation: Sequence[AllocationRule] = (),
        reconcile_interval_ns: int = 15 * 60 * 1_000_000_000,
        exchange: PaperExchange | None = None,
        snapshot_every: int | None = None,
        postmortem_dir: str | os.PathLike[str] | None = None,
        invariant_interval_ns: int | None = None,
    ) -> None:
        limits, breaker = risk.limits, risk.breaker
        self.settings = risk
        self.instrument = instrument
        self._factor = instrument.notional_factor
        self.clock = clock = TimeWarp.virtual(start_ts)
        self.scheduler = ScenarioClock(clock)
        self.bus = bus = MessageBus()
        self.journal = journal
        # The journal hears every fact first, as it is published (a tap: before any chaos
        # layer on the bus), so it records causes before their effects.
        bus.tap(Event, journal.append, where=_is_journaled)
        # Write-ahead: an order is durable before the venue hears of it, and an incident
        # the moment it happens, so a crash never loses what the node did to the world.
        bus.tap(Event, self._write_ahead, where=_is_write_ahead)
        self.ledger = Ledger(instrument.quote_currency, instrument.money_precision)
        self.slots = list(slots)
        main = self.slots[0]
        if exchange is not None:
            # A venue that outlived a crashed node: it keeps its accounts and orders and
            # from now on reads this kernel's clock.
            self.exchange = exchange
            exchange.use_clock(clock)
        else:
            self.exchange = PaperExchange(
                clock=clock,
                instruments=[instrument],
                cash=main.capital if main.account == "main" else 0,
                commission=commission,
                fill_model=fill_model,
            )
            for slot in self.slots:
                if slot.account != "main":
                    self.exchange.open_account(slot.account, slot.capital)
        # Incident reports read the journal: they hear each incident right after it.
        self.postmortems = (
            None if postmortem_dir is None else PostmortemWriter(bus, journal, postmortem_dir)
        )
        # Before anything of a bar happens, the state is quiescent: snapshot it then.
        self.snapshot_every = snapshot_every
        self.snapshots = 0
        self._snapshot_seq = journal.last_seq
        self.control_log: list[Event] = []
        bus.tap(Event, self.control_log.append, where=_is_control)
        if snapshot_every is not None and snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1 event, not {snapshot_every}")
        self._halted_by_journal = False
        self._watch_cro = risk.heartbeat_timeout_ns is not None
        self._live = invariant_interval_ns is not None
        self._cro_timeout = risk.heartbeat_timeout_ns or 0
        self._cro_interval = risk.limits.heartbeat_interval_ns
        self._cro_beat_ts = -(1 << 62)
        self._last_bar_ts: dict[str, int] = {}
        self.bars_rejected = 0
        bus.guard(Bar, self._accept_bar)
        bus.subscribe(Bar, self._at_bar_start)
        # Subscription order is delivery order: the venue sees a bar first, then the
        # portfolios' fills, the risk engine, the equity curve, and last the strategies.
        bus.subscribe(Bar, self.exchange.on_bar)
        self.broker = PaperBroker(bus=bus, exchange=self.exchange)
        self.execution = ExecutionEngine(
            bus=bus, clock=clock, client=self.broker, heartbeat_timeout_ns=risk.heartbeat_timeout_ns
        )
        self.portfolios: dict[str, Portfolio] = {}
        for slot in self.slots:
            self.portfolios[slot.name] = Portfolio(
                bus=bus,
                ledger=self.ledger,
                instruments=[instrument],
                initial_cash=slot.capital,
                ts=start_ts,
                account=slot.account,
            )
        self.kill_switch = EmergencyStop(
            clock,
            bus.publish,
            config=risk.config.kill_switch,
            on_trip=[self._on_kill],
            on_flatten=[self._flatten],
            money_precision=instrument.money_precision,
        )
        self._loss_checks = risk.max_loss_from_peak is not None
        self._daily_loss_checks = risk.daily_loss_limit is not None
        self.risk = RiskEngine(bus=bus, clock=clock, limits=limits, kill_switch=self.kill_switch)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.protections: dict[str, Protections] = {}
        for slot in self.slots:
            breaker_ = CircuitBreaker(f"strategy:{slot.name}", breaker, clock, bus.publish)
            self.breakers[slot.name] = breaker_
            protections = None
            if risk.protections_enabled:
                protections = _protections(risk, slot.capital, bus, instrument.money_precision)
                self.protections[slot.name] = protections
            self.risk.register_strategy(
                slot.name,
                engine=slot.engine,
                portfolio=self.portfolios[slot.name],
                breaker=breaker_,
                protections=protections,
            )
        for engine in sorted({slot.engine for slot in self.slots}):
            self.risk.engine_breakers[engine] = CircuitBreaker(
                f"engine:{engine}", breaker, clock, bus.publish
            )
        self.risk.global_breaker = CircuitBreaker("global", breaker, clock, bus.publish)
        self.alerts = KernelAlerts(bus=bus, clock=clock, config=risk.config.alerts)
        self.pnl = ProfitLossTracker(
            money_precision=instrument.money_precision, allocation_rules=profit_allocation
        )
        for slot in self.slots:
            self.pnl.set_capital(slot.name, slot.capital)
        # ROI is over the capital a pool holds: transfers move it.
        self._pool_strategy = {slot.account: slot.name for slot in self.slots}
        self._start_capital = {slot.name: slot.capital for slot in self.slots}
        self._net_transfers: dict[str, int] = {}
        bus.subscribe(CapitalTransferred, self._on_transfer)
        self.curve = EquityCurve()
        self._pnl_seen: dict[str, int] = {}
        self._flattens = 0
        self._verified_version = -1
        fast = len(self.slots) == 1 and not self.protections and not self._loss_checks
        fast = fast and not self._daily_loss_checks
        self._single = next(iter(self.portfolios.values())) if fast else None
        self.closes: list[int] = []
        self.rebuilt_equity: Any = None
        """Set by recovery: the equity of the bars a resumed run re-warms."""
        bus.subscribe(Bar, self._on_bar)
        self.runners: dict[str, StrategyRunner] = {}
        for slot in self.slots:
            self.runners[slot.name] = StrategyRunner(
                bus=bus,
                clock=clock,
                portfolio=self.portfolios[slot.name],
                strategy=slot.strategy,
                instrument=instrument,
                sizing=sizing,
                name=slot.name,
                scheduler=self.scheduler,
            )
        self.rejections: dict[str, int] = {}
        self.venue_rejections_by_strategy: dict[str, int] = {}
        bus.subscribe(OrderRejected, self._count_rejection)
        bus.subscribe(OrderCanceled, self._count_rejection)
        bus.subscribe(RiskDecision, self._count_denial)
        self.fills = 0
        bus.subscribe(OrderFilled, self._count_fill)
        bus.subscribe(FillReversed, self._uncount_fill)
        self.kill_switch_trips = 0
        bus.subscribe(KillSwitchTripped, self._count_kill)
        self.balance_checks = 0
        # Simulation checks after every journaled event; live mode, where that costs too
        # much, every ``invariant_interval_ns`` of kernel time (and at the end of a run).
        self.invariant_interval_ns = invariant_interval_ns
        if check_invariants and invariant_interval_ns is None:
            bus.subscribe(Event, self._check_invariants, where=_is_journaled)
        elif check_invariants and invariant_interval_ns is not None:
            if invariant_interval_ns <= 0:
                raise ValueError(f"invariant_interval_ns must be > 0, not {invariant_interval_ns}")
            self.scheduler.schedule_in(invariant_interval_ns, self._periodic_invariants)
        # Coverage, unique fills and positions = sum of fills, after each order event.
        self.consistency = (
            ConsistencyChecker(
                bus, self.execution, self.portfolios, on_violation=self._inconsistent
            )
            if check_invariants
            else None
        )
        # Last on every bar: it sees the venue's matching, our fills and new orders.
        self.reconciliation = Reconciliation(
            bus,
            clock,
            self.exchange,
            self.execution,
            self.portfolios,
            self.kill_switch,
            interval_ns=reconcile_interval_ns,
        )
        bus.subscribe(Bar, self._reconcile)

    # -- per bar ------------------------------------------------------------------------
    def _on_bar(self, bar: Bar) -> None:
        self.closes.append(bar.close)
        if self._single is not None:  # one pool, no per-pool rules: the common fast path
            portfolio = self._single
            quantity = portfolio.positions[bar.symbol].quantity
            equity = portfolio.cash
            if quantity:
                equity += quantity * bar.close * self._factor
            self.curve.record(equity, quantity != 0)
            return
        equity = 0
        exposed = False
        protections = self.protections
        for name, portfolio in self.portfolios.items():
            pool = portfolio.cash
            quantity = portfolio.positions[bar.symbol].quantity
            if quantity:
                pool += quantity * bar.close * self._factor
                exposed = True
            equity += pool
            if protections:
                # Capital moved in or out by the allocator is neither a gain nor a loss.
                protections[name].on_equity(bar.ts, pool - portfolio.transfers)
        self.curve.record(equity, exposed)
        if self._loss_checks:
            self.kill_switch.check_loss(equity, bar.ts)
        if self._daily_loss_checks:
            self.kill_switch.check_daily_loss(equity, bar.ts)

    def _accept_bar(self, bar: Bar) -> bool:
        """Only bars that can be true reach the venue, the risk layer and the strategies."""
        lo, h = bar.low, bar.high
        if 0 < lo <= bar.open <= h and lo <= bar.close <= h and bar.volume >= 0:
            last = self._last_bar_ts.get(bar.symbol)
            if last is None or bar.ts > last:
                self._last_bar_ts[bar.symbol] = bar.ts
                return True
            reason = f"bar at {bar.ts} is not after the last one at {last}"
        else:
            reason = (
                f"impossible bar: open {bar.open} high {h} low {lo} close {bar.close} "
                f"volume {bar.volume}"
            )
        self.bars_rejected += 1
        self.bus.publish(
            MarketDataRejected(
                ts=self.clock.now_ns(), symbol=bar.symbol, data_ts=bar.ts, reason=reason
            )
        )
        return False

    def _at_bar_start(self, bar: Bar) -> None:
        # Once per bar, so kept lean: the CRO watchdog, the journal's health, snapshots.
        if self._watch_cro and (self._live or self.bus.interceptor is not None):
            # The CRO says it is alive; execution's watchdog halts when it has not heard
            # it within the timeout, also when no order is coming. (In a simulation with
            # nothing between the CRO and execution, no chaos layer on the bus, the
            # heartbeat cannot be lost: the watchdog would have nothing to see.)
            now = bar.ts
            if now - self._cro_beat_ts >= self._cro_interval:
                self._cro_beat_ts = now
                self.risk.heartbeat()
            execution = self.execution
            last = execution.last_heartbeat_ts
            if execution.halted is None and (last is None or now - last > self._cro_timeout):
                execution.check_heartbeat()
        journal = self.journal
        if self._halted_by_journal or journal.last_commit_error is not None:
            self._journal_health()
        every = self.snapshot_every
        if (
            every is not None
            and journal.last_seq - self._snapshot_seq >= every
            and journal.last_commit_error is None
        ):
            self.take_snapshot()

    def _write_ahead(self, _event: Event) -> None:
        """Commit what is pending now (the journal tap has just appended ``_event``).

        A failing store keeps the records pending (nothing is lost) and the node halts at
        the next bar start (:meth:`_journal_health`)."""
        self.journal.retry_commit()

    def _journal_health(self) -> None:
        """No trading on facts that cannot be made durable: HALTED while the journal's
        commits fail (its records wait, nothing is lost), ACTIVE again once they succeed."""
        journal, risk = self.journal, self.risk
        if journal.commit_failing:
            journal.retry_commit()  # succeeds once the store is back
        if journal.commit_failing and not self._halted_by_journal:
            self._halted_by_journal = True
            risk.set_state(
                TradingState.HALTED,
                actor="journal",
                reason=f"journal commits failing ({journal.last_commit_error}); "
                f"{journal.pending} records wait, nothing is lost",
            )
        elif not journal.commit_failing and self._halted_by_journal:
            self._halted_by_journal = False
            if risk.states.get("global") is TradingState.HALTED:
                risk.set_state(
                    TradingState.ACTIVE, actor="journal", reason="journal commits succeed again"
                )

    def take_snapshot(self) -> int:
        """Flush the journal and store a snapshot of derived state; returns its seq.

        Call it only at a quiescent point (between bars): the kernel does, every
        ``snapshot_every`` journal events.
        """
        self._snapshot_seq = self.journal.write_snapshot(take_snapshot(self))
        self.snapshots += 1
        return self._snapshot_seq

    def _reconcile(self, bar: Bar) -> None:
        self.reconciliation.maybe_check(bar.ts)

    def _on_transfer(self, event: CapitalTransferred) -> None:
        # Allocated capital: the start plus what came in minus what went out, never below
        # 0 (a pool that gave away its winnings has nothing left to earn a return on).
        for pool, signed in ((event.from_pool, -event.amount), (event.to_pool, event.amount)):
            strategy = self._pool_strategy.get(pool)
            if strategy is not None:
                net = self._net_transfers.get(strategy, 0) + signed
                self._net_transfers[strategy] = net
                start = self._start_capital[strategy]
                self.pnl.set_capital(strategy, max(0, start + net))

    def sync_pnl_capital(self) -> None:
        """Take each pool's net transfers from its portfolio (after a recovery rebuilt it
        without publishing): the PnL tracker's capital follows them again."""
        for slot in self.slots:
            net = self.portfolios[slot.name].transfers
            self._net_transfers[slot.name] = net
            self.pnl.set_capital(slot.name, max(0, slot.capital + net))

    def feed_pnl(self) -> None:
        """Give the PnL tracker every trade closed so far (once each)."""
        seen = self._pnl_seen
        for slot in self.slots:
            trades = self.portfolios[slot.name].closed_trades
            for trade in trades[seen.get(slot.name, 0) :]:
                self.pnl.on_trade(slot.name, slot.engine, trade)
            seen[slot.name] = len(trades)

    def total_equity(self) -> int:
        marks = {self.instrument.symbol: self.closes[-1]} if self.closes else {}
        return sum(p.equity(marks) for p in self.portfolios.values())

    def initial_capital(self) -> int:
        return sum(p.initial_cash for p in self.portfolios.values())

    # -- kill switch actions ------------------------------------------------------------
    def _on_kill(self, scope: str) -> None:
        """Cancel the open orders of everything ``scope`` covers and stop its strategies."""
        for slot in self.slots:
            covered = scope in ("global", f"engine:{slot.engine}", f"strategy:{slot.name}")
            if not covered:
                continue
            for order in self.execution.open_orders():
                if order.strategy == slot.name:
                    self.broker.cancel(order.client_order_id)
            self.runners[slot.name].kill(f"kill switch {scope}")

    def _flatten(self, scope: str) -> None:
        """Close the positions of everything ``scope`` covers, through the risk engine."""
        symbol = self.instrument.symbol
        for slot in self.slots:
            covered = scope in ("global", f"engine:{slot.engine}", f"strategy:{slot.name}")
            position = self.portfolios[slot.name].position_quantity(symbol)
            if not covered or not position:
                continue
            self._flattens += 1
            request = OrderRequest(
                client_order_id=f"flatten-{slot.name}-{self._flattens}",
                symbol=symbol,
                side=Side.SELL if position > 0 else Side.BUY,
                close_position=True,
                reduce_only=True,
                account=slot.account,
            )
            self.bus.send(SubmitOrder(strategy=slot.name, request=request, actor="emergency_stop"))

    # -- invariants and counters --------------------------------------------------------
    def _inconsistent(self, violation: InvariantViolated) -> None:
        """Fail closed on a broken state invariant: halt everything, then stop the run."""
        self.kill_switch.trip(
            "global",
            f"{violation.invariant}: {violation.detail}",
            actor="invariants",
            trigger="invariant_violation",
        )
        raise StateInconsistent(violation)

    def _periodic_invariants(self) -> None:
        self._check_invariants(None)
        interval = self.invariant_interval_ns
        if interval is not None:
            self.scheduler.schedule_in(interval, self._periodic_invariants)

    def _check_invariants(self, _event: Event | None) -> None:
        # The equation is a function of the books; every change to them posts a ledger
        # transaction, so books unchanged since the last verified check still balance.
        version = self.ledger.transactions
        if version == self._verified_version:
            self.balance_checks += 1
            return
        try:
            for portfolio in self.portfolios.values():
                portfolio.check_balance_equation()
        except BalanceEquationViolated as violation:
            # Fail closed and say why, then stop the run: the books cannot be trusted.
            self.kill_switch.trip(
                "global", str(violation), actor="invariants", trigger="invariant_violation"
            )
            raise
        self._verified_version = version
        self.balance_checks += 1

    def _count_rejection(self, event: OrderRejected | OrderCanceled) -> None:
        if event.reason not in ("canceled", "expired"):
            self.rejections[event.reason] = self.rejections.get(event.reason, 0) + 1
            counts = self.venue_rejections_by_strategy
            counts[event.strategy] = counts.get(event.strategy, 0) + 1

    def _count_denial(self, event: RiskDecision) -> None:
        if not event.approved:
            key = f"risk: {event.check or event.reason}"
            self.rejections[key] = self.rejections.get(key, 0) + 1

    def _count_fill(self, _fill: OrderFilled) -> None:
        self.fills += 1

    def _uncount_fill(self, event: FillReversed) -> None:
        """A reversed fill is not one of the run's fills; its order counts as pending again
        (execution, subscribed earlier, has already reopened it)."""
        self.fills -= 1
        order = self.execution.orders.get(event.client_order_id)
        if order is not None and order.is_open:
            self.risk.reopen_order(order.strategy, order.request, filled=order.filled_quantity)

    def _count_kill(self, _event: KillSwitchTripped) -> None:
        self.kill_switch_trips += 1

    # -- reports ------------------------------------------------------------------------
    def strategy_report(self) -> dict[str, dict[str, Any]]:
        """Per strategy: state, trades, orders rejected, breaker (for the JSON summary)."""
        report: dict[str, dict[str, Any]] = {}
        for slot in self.slots:
            runner = self.runners[slot.name]
            record = self.risk.strategies[slot.name]
            breaker = self.breakers[slot.name]
            if self.kill_switch.is_tripped(f"strategy:{slot.name}"):
                state = "killed"
            elif runner.stopped is not None:
                state = "stopped"
            else:
                state = "active"
            report[slot.name] = {
                "state": state,
                "stopped_reason": runner.stopped,
                "engine": slot.engine,
                "capital": str(self._money(slot.capital)),
                "trades": len(self.portfolios[slot.name].closed_trades),
                "orders_sent": runner.orders_sent,
                "orders_rejected": record.denied
                + self.venue_rejections_by_strategy.get(slot.name, 0),
                "breaker": breaker.state.value,
                "breaker_trips": breaker.trips,
            }
        return report

    def _money(self, amount: int) -> Decimal:
        value = Decimal(amount).scaleb(-self.instrument.money_precision)
        return value.quantize(Decimal(1).scaleb(-self.instrument.price_precision))

    def risk_report(self) -> dict[str, Any]:
        """Risk-layer totals: denials by check, breaker trips, kill-switch trips."""
        return {
            "rejections_by_reason": dict(sorted(self.risk.denied_by.items())),
            "approved": self.risk.approved,
            "denied": self.risk.denied,
            "breaker_trips": sum(b.trips for b in self.breakers.values()),
            "engine_breakers": {k: b.state.value for k, b in self.risk.engine_breakers.items()},
            "global_breaker": self.risk.global_breaker.state.value
            if self.risk.global_breaker is not None
            else None,
            "kill_switch_trips": self.kill_switch_trips,
            "reconciliation": {
                "checks": self.reconciliation.checks,
                "corrections": len(self.reconciliation.corrections),
                "mismatches": len(self.reconciliation.mismatches),
            },
            "profile": self.settings.profile,
            "alerts": self.alerts.counts(),
            "trading_state": {k: v.value for k, v in sorted(self.risk.states.items())},
        }

    def safety_status(self) -> dict[str, Any]:
        """The unified safety status: every breaker, kill switch, state and limit usage."""
        risk = self.risk
        limits = risk.limits
        symbol = self.instrument.symbol
        usage: dict[str, Any] = {}
        for name, record in risk.strategies.items():
            equity = record.portfolio.equity(risk.last_price) if risk.last_price else 0
            exposure = risk.gross_exposure(record, None) if risk.last_price else 0
            window = len(record.sent_times)
            usage[name] = {
                "position": risk.projected_position(symbol, name),
                "max_position": limits.max_position_quantity,
                "exposure_of_equity": str(Fraction(exposure, equity)) if equity > 0 else None,
                "max_total_exposure": str(limits.max_total_exposure),
                "orders_last_minute": window,
                "max_orders_per_minute": limits.max_orders_per_minute_strategy,
            }
        return {
            "trading_state": {k: v.value for k, v in sorted(risk.states.items())},
            "execution": {
                "halted": self.execution.halted,
                "last_cro_heartbeat_ts": self.execution.last_heartbeat_ts,
            },
            "breakers": {name: b.snapshot() for name, b in sorted(self.breakers.items())},
            "kill_switches": msgspec.to_builtins(self.kill_switch.snapshot()),
            "market_data": {
                "last_data_ts": dict(risk.last_data_ts),
                "invalid": dict(risk.invalid_data),
            },
            "limits": msgspec.to_builtins(limits, enc_hook=str),
            "limit_usage": usage,
        }

    def buy_hold(self, warmup: int) -> Fraction:
        closes = self.closes
        if not closes:
            return Fraction(0)
        start = max(0, min(warmup, len(closes) - 1))
        if not closes[start]:
            return Fraction(0)
        return Fraction(closes[-1] - closes[start], closes[start])
