"""A simulation node on bar data: the whole order path, wired on one bus.

Strategy -> RiskEngine -> ExecutionEngine -> PaperBroker -> PaperExchange, fills back
to the Portfolio and the double-entry Ledger, every state change journaled. A run is a
pure function of (config, data): the same inputs give the same journal digest.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from predator.core.events import Event
from predator.core.numbers import NotRepresentable, from_decimal
from predator.ledger.journal import Journal
from predator.ledger.ledger import Transaction
from predator.market.bar_loader import BarFeed
from predator.market.instrument import Instrument
from predator.node.kernel import Kernel, StrategySlot
from predator.node.risk_settings import RiskSettings
from predator.portfolio.position import ClosedTrade
from predator.portfolio.stats import Performance, performance
from predator.risk.config import ConfigError
from predator.risk.pnl_tracker import AllocationRule
from predator.strategy.api import Sizing
from predator.strategy.registry import build_strategy
from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel, FillMode
from predator.venue.paper_exchange import PaperExchange

__all__ = [
    "Backtest",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "RunCompleted",
    "RunStarted",
    "SafetyStatusReported",
    "StrategySpec",
]

ProgressCallback = Callable[[int, int], None]


class BacktestError(ValueError):
    """The backtest was configured with a value it cannot use (a user error)."""


class StrategySpec(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy of a run: what (built-in name or file), its parameters, its capital.

    ``allocation`` is its share of the run's cash (decimal string; default: an equal
    split); ``engine`` groups strategies for engine-level limits (default: its name).
    """

    strategy: str
    params: dict[str, Any] = {}
    allocation: str | None = None
    engine: str | None = None
    name: str | None = None


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a bar backtest depends on besides the data. Defaults as backtesting.py.

    Amounts are decimal strings (exact): ``cash`` in the quote currency, ``commission``
    a fraction of notional, ``commission_fixed`` per order, ``commission_per_unit`` per
    unit. ``fill`` is ``next-open`` or ``close``; ``sizing`` the default order size
    (``all-in``, ``units:N``, ``fraction:F``). ``journal=None`` keeps the journal in memory.
    ``strategies`` runs several strategies side by side, each in its own capital pool;
    when empty, ``strategy`` and ``params`` name the one strategy. ``risk`` is the risk
    configuration (see ``predator.risk.config``); ``None`` uses the backtest profile.
    """

    strategy: str = "sma_cross"
    params: dict[str, Any] = {}
    strategies: tuple[StrategySpec, ...] = ()
    cash: str = "10000"
    commission: str = "0"
    commission_fixed: str = "0"
    commission_per_unit: str = "0"
    spread_bps: str = "0"
    slippage_bps: str = "0"
    fill: str = "next-open"
    sizing: str = "all-in"
    journal: str | None = None
    finalize: bool = True
    check_invariants: bool = True
    risk: dict[str, Any] | None = None
    profit_allocation: dict[str, str] = {}

    def strategy_specs(self) -> tuple[StrategySpec, ...]:
        """The strategies of the run (one from ``strategy``/``params`` if none listed)."""
        if self.strategies:
            return self.strategies
        return (StrategySpec(strategy=self.strategy, params=dict(self.params)),)


class RunStarted(Event, frozen=True, kw_only=True):
    """First journal event: what this run is a function of."""

    config: dict[str, Any]
    data_sha256: str
    data_format: str
    bars: int
    instrument: Instrument


class ProfitAllocated(Event, frozen=True, kw_only=True):
    """Realized net profit split by the allocation rules, as posted to the ledger."""

    transaction: Transaction


class SafetyStatusReported(Event, frozen=True, kw_only=True):
    """The unified safety status (breakers, kill switches, states, limit usage)."""

    status: dict[str, Any]


class RunCompleted(Event, frozen=True, kw_only=True):
    """Last journal event: a journal without it is incomplete."""

    final_equity: int
    trades: int
    fills: int
    orders: int
    realized_pnl: int = 0
    fees: int = 0
    initial_capital: int = 0


class BacktestResult(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of a backtest: performance, trade list and journal identity."""

    performance: Performance
    trades_list: list[ClosedTrade]
    instrument: Instrument
    money_precision: int
    bars: int
    fills: int
    orders: int
    rejections: dict[str, int]
    journal_digest: str
    journal_events: int
    journal_path: str | None
    balance_checks: int
    equity_curve: list[int]
    strategies: dict[str, dict[str, Any]] = {}
    risk: dict[str, Any] = {}
    trades_by_strategy: dict[str, list[ClosedTrade]] = {}
    pnl: dict[str, Any] = {}
    postmortems: list[str] = []
    """Post-mortem files written for the run's incidents (index last)."""

    @property
    def final_equity(self) -> Decimal:
        return self.performance.final_equity

    @property
    def trades(self) -> int:
        return self.performance.trades

    def summary(self) -> dict[str, Any]:
        """The JSON summary printed by ``predator backtest --json``."""
        p = self.performance

        def money(value: Decimal) -> float:
            return float(value.quantize(Decimal(1).scaleb(-self.instrument.price_precision)))

        def pct(value: Decimal | None) -> float | None:
            return None if value is None else float(value.quantize(Decimal("0.01")))

        return {
            "symbol": self.instrument.symbol,
            "bars": self.bars,
            "initial_equity": money(p.initial_equity),
            "final_equity": money(p.final_equity),
            "final_equity_exact": str(p.final_equity.normalize()),
            "return_pct": pct(p.return_pct),
            "buy_hold_pct": pct(p.buy_hold_pct),
            "trades": p.trades,
            "win_rate_pct": pct(p.win_rate_pct),
            "max_drawdown_pct": pct(p.max_drawdown_pct),
            "exposure_pct": pct(p.exposure_pct),
            "fees": money(p.fees),
            "fills": self.fills,
            "orders": self.orders,
            "rejections": self.rejections,
            "journal_digest": self.journal_digest,
            "journal_events": self.journal_events,
            "journal": self.journal_path,
            "strategies": self.strategies,
            "risk": self.risk,
            "pnl": self.pnl,
            "postmortems": self.postmortems,
        }


def _decimal(
    name: str, text: str, *, minimum: Decimal | None = None, strict: bool = False
) -> Decimal:
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        raise BacktestError(f"{name} must be a number, got {text!r}") from None
    if not value.is_finite():
        raise BacktestError(f"{name} must be a finite number, got {text!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        relation = ">" if strict else ">="
        raise BacktestError(f"{name} must be {relation} {minimum}, got {text}")
    return value


DEFAULT_SNAPSHOT_EVERY = 10_000
"""Journal events between snapshots of derived state: a snapshot costs a few ms even for a
year of 1-minute bars, and bounds the records recovery replays."""


def _build_kernel(
    feed: BarFeed,
    config: BacktestConfig,
    journal: Journal,
    exchange: PaperExchange | None = None,
    snapshot_every: int | None = DEFAULT_SNAPSHOT_EVERY,
    postmortem_dir: str | os.PathLike[str] | None = None,
    invariant_interval_ns: int | None = None,
) -> Kernel:
    """Validate ``config`` against ``feed`` and wire the kernel (user errors raise early).

    ``exchange``: a venue that outlived a crashed node, for recovery. ``snapshot_every``:
    journal events between snapshots of derived state (``None``: none).
    """
    instrument = feed.instrument
    money_p = instrument.money_precision
    cash_value = _decimal("cash", config.cash, minimum=Decimal(0), strict=True)
    try:
        cash = from_decimal(cash_value, money_p)
    except NotRepresentable:
        raise BacktestError(f"cash {config.cash} has more than {money_p} decimals") from None
    try:
        sizing = Sizing.parse(config.sizing)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    try:
        fill_mode = FillMode(config.fill)
    except ValueError:
        raise BacktestError(
            f"fill must be one of {', '.join(m.value for m in FillMode)}, got {config.fill!r}"
        ) from None
    try:
        commission = CommissionModel(
            instrument,
            rate=_decimal("commission", config.commission),
            fixed=_decimal("commission_fixed", config.commission_fixed, minimum=Decimal(0)),
            per_unit=_decimal(
                "commission_per_unit", config.commission_per_unit, minimum=Decimal(0)
            ),
        )
        fill_model = BarFillModel(
            fill_mode,
            spread_bps=_decimal("spread_bps", config.spread_bps, minimum=Decimal(0)),
            slippage_bps=_decimal("slippage_bps", config.slippage_bps, minimum=Decimal(0)),
        )
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    try:
        risk = RiskSettings.from_config(config.risk, instrument)
    except ConfigError as exc:
        raise BacktestError(str(exc)) from None
    slots = _slots(config, cash)
    try:
        rules = [AllocationRule(name, share) for name, share in config.profit_allocation.items()]
        if rules and sum(rule.fraction for rule in rules) != 1:
            raise ValueError("profit allocation shares must add up to 1")
    except (ValueError, ArithmeticError) as exc:
        raise BacktestError(f"profit allocation: {exc}") from None
    return Kernel(
        instrument=instrument,
        start_ts=feed.first_ts if len(feed) else 0,
        slots=slots,
        sizing=sizing,
        commission=commission,
        fill_model=fill_model,
        risk=risk,
        journal=journal,
        check_invariants=config.check_invariants,
        profit_allocation=rules,
        exchange=exchange,
        snapshot_every=snapshot_every,
        postmortem_dir=postmortem_dir,
        invariant_interval_ns=invariant_interval_ns,
    )


def _slots(config: BacktestConfig, cash: int) -> list[StrategySlot]:
    specs = config.strategy_specs()
    single = len(specs) == 1
    given: list[Fraction | None] = []
    for spec in specs:
        if spec.allocation is None:
            given.append(None)
            continue
        value = _decimal(f"allocation of {spec.strategy}", spec.allocation)
        if not 0 < value <= 1:
            raise BacktestError(
                f"allocation of {spec.strategy} must be in (0, 1], got {spec.allocation}"
            )
        given.append(Fraction(value))
    left = 1 - sum((g for g in given if g is not None), Fraction(0))
    unassigned = given.count(None)
    if left < 0 or (unassigned and left <= 0):
        raise BacktestError("strategy allocations add up to more than 1")
    shares = [left / unassigned if g is None else g for g in given]
    slots: list[StrategySlot] = []
    taken: set[str] = set()
    for spec, share in zip(specs, shares, strict=True):
        strategy = build_strategy(spec.strategy, spec.params)
        base = spec.name or type(strategy).name or type(strategy).__name__
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        taken.add(name)
        capital = floor(cash * share)
        if capital <= 0:
            raise BacktestError(f"strategy {name} gets no capital (allocation {share})")
        slots.append(
            StrategySlot(
                name=name,
                strategy=strategy,
                engine=spec.engine or name,
                account="main" if single else name,
                capital=capital,
            )
        )
    return slots


def _announce_run(kernel: Kernel, feed: BarFeed, config: BacktestConfig, journal: Journal) -> None:
    """Journal what the run is a function of (``RunStarted``, the journal's first event)."""
    instrument, clock, bus = kernel.instrument, kernel.clock, kernel.bus
    journal.set_meta("format", "predator-journal/1")
    recorded = msgspec.structs.replace(
        config,
        journal=None,
        params={},
        strategies=tuple(
            StrategySpec(
                strategy=config.strategy_specs()[i].strategy,
                params=_strategy_parameters(slot.strategy),
                allocation=str(Fraction(slot.capital, kernel.initial_capital())),
                engine=slot.engine,
                name=slot.name,
            )
            for i, slot in enumerate(kernel.slots)
        ),
    )
    bus.publish(
        RunStarted(
            ts=clock.now_ns(),
            config=msgspec.to_builtins(recorded),
            data_sha256=_data_sha256(feed),
            data_format=feed.format,
            bars=len(feed),
            instrument=instrument,
        )
    )


def _strategy_parameters(strategy: Any) -> dict[str, Any]:
    """A strategy's effective parameters (after defaults and type conversion)."""
    return {name: getattr(strategy, name) for name in sorted(type(strategy).parameters)}


def _data_sha256(feed: BarFeed) -> str:
    """SHA-256 of the data file, or of the bars themselves for a feed built in memory."""
    if os.path.isfile(feed.path):
        return _file_sha256(feed.path)
    digest = hashlib.sha256()
    for column in (feed.timestamps(), feed.closes()):
        digest.update(msgspec.msgpack.encode(column))
    return digest.hexdigest()


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Backtest:
    """One bar backtest of one strategy on one instrument.

    >>> from predator.market import load_bars
    >>> result = Backtest(load_bars("goog.csv"), BacktestConfig(params={"fast": 10})).run()
    ... # doctest: +SKIP
    """

    def __init__(
        self,
        feed: BarFeed,
        config: BacktestConfig | None = None,
        *,
        progress: ProgressCallback | None = None,
        progress_every: int = 2048,
        snapshot_every: int | None = DEFAULT_SNAPSHOT_EVERY,
        postmortem_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.feed = feed
        self.config = config or BacktestConfig()
        self.snapshot_every = snapshot_every
        self.postmortem_dir = postmortem_dir
        self._progress = progress
        self._progress_every = progress_every

    def run(self) -> BacktestResult:
        """Run to the end of the data; the journal file appears only when complete."""
        return run_with_journal(self.config.journal, self._run)

    def _run(self, journal: Journal, final_path: Path | None) -> BacktestResult:
        feed, config = self.feed, self.config
        kernel = _build_kernel(
            feed,
            config,
            journal,
            snapshot_every=self.snapshot_every,
            postmortem_dir=self.postmortem_dir,
        )
        clock, bus, scheduler = kernel.clock, kernel.bus, kernel.scheduler
        _announce_run(kernel, feed, config, journal)
        for runner in kernel.runners.values():
            runner.start()
        total = len(feed)
        progress, every = self._progress, self._progress_every
        publish, set_time = bus.publish, clock.set
        for done, bar in enumerate(feed, 1):
            if scheduler.next_time is not None and scheduler.next_time <= bar.ts:
                scheduler.run_until(bar.ts)
            set_time(bar.ts)
            publish(bar)
            if progress is not None and done % every == 0:
                progress(done, total)
        return _finish_run(kernel, config, journal, final_path, total, progress)


def _finish_run(
    kernel: Kernel,
    config: BacktestConfig,
    journal: Journal,
    final_path: Path | None,
    total: int,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    """End a run: stop strategies, end flat, reconcile, report; the journal's last events."""
    instrument = kernel.instrument
    clock, bus = kernel.clock, kernel.bus
    for runner in kernel.runners.values():
        runner.stop()
    symbol = instrument.symbol
    if config.finalize:
        # The run ends flat: orders still working are canceled (the data ended before
        # they could fill) except closes already on their way, then what is still open
        # is closed on the last bar (at its open in next-open mode: backtesting.py's
        # finalize convention).
        closing = []
        for order in kernel.execution.open_orders():
            if order.request.close_position:
                closing.append(order.client_order_id)
            else:
                kernel.exchange.cancel(order.client_order_id, "end of data")
        pending_close = {kernel.execution.orders[c].strategy for c in closing}
        for slot in kernel.slots:
            position = kernel.portfolios[slot.name].position_quantity(symbol)
            if position and slot.name not in pending_close:
                order_id = slot.strategy.close()
                if order_id is not None:
                    closing.append(order_id)
        kernel.exchange.finalize(only=closing)
        # Closed on the last bar: flat at its close, as a run recovered after the
        # venue had already closed them sees it too.
        exposed = any(p.position_quantity(symbol) for p in kernel.portfolios.values())
        kernel.curve.restate_last(kernel.total_equity(), exposed)
    kernel.reconciliation.check()  # the run ends reconciled with the venue
    if progress is not None:
        progress(total, total)
    warmup = max((int(slot.strategy.warmup) for slot in kernel.slots), default=0)
    trades = sorted(
        (t for p in kernel.portfolios.values() for t in p.closed_trades),
        key=lambda t: (t.exit_ts, t.entry_ts),
    )
    initial = kernel.initial_capital()
    perf = performance(
        curve=kernel.curve,
        initial=initial,
        trades=trades,
        fees=sum(p.fees for p in kernel.portfolios.values()),
        realized_pnl=sum(p.realized_pnl for p in kernel.portfolios.values()),
        money_precision=instrument.money_precision,
        buy_hold=kernel.buy_hold(warmup),
    )
    final_equity = kernel.curve.values[-1] if kernel.curve.values else initial
    kernel.feed_pnl()
    allocation = None
    if config.profit_allocation:
        allocation = kernel.pnl.allocate(clock.now_ns(), kernel.ledger)
    if allocation is not None:
        bus.publish(ProfitAllocated(ts=clock.now_ns(), transaction=allocation))
    strategies = kernel.strategy_report()
    risk = kernel.risk_report()
    bus.publish(SafetyStatusReported(ts=clock.now_ns(), status=kernel.safety_status()))
    bus.publish(
        RunCompleted(
            ts=clock.now_ns(),
            final_equity=final_equity,
            trades=len(trades),
            fills=kernel.fills,
            orders=len(kernel.execution.orders),
            realized_pnl=sum(p.realized_pnl for p in kernel.portfolios.values()),
            fees=sum(p.fees for p in kernel.portfolios.values()),
            initial_capital=initial,
        )
    )
    journal.flush()
    postmortems = [] if kernel.postmortems is None else kernel.postmortems.finish()
    return BacktestResult(
        postmortems=[str(path) for path in postmortems],
        performance=perf,
        trades_list=trades,
        instrument=instrument,
        money_precision=instrument.money_precision,
        bars=total,
        fills=kernel.fills,
        orders=len(kernel.execution.orders),
        rejections=dict(sorted(kernel.rejections.items())),
        journal_digest=journal.digest,
        journal_events=journal.last_seq,
        journal_path=None if final_path is None else str(final_path),
        balance_checks=kernel.balance_checks,
        equity_curve=kernel.curve.values,
        strategies=strategies,
        risk=risk,
        trades_by_strategy={name: list(p.closed_trades) for name, p in kernel.portfolios.items()},
        pnl=kernel.pnl.export(include_trades=False),
    )


R = TypeVar("R")


def run_with_journal(journal_path: str | None, run: Callable[[Journal, Path | None], R]) -> R:
    """``run(journal, final_path)`` with the journal written to ``PATH.partial`` and renamed
    to ``journal_path`` only when the run completes (in memory without a path): a failed
    run leaves no journal behind."""
    final_path = None if journal_path is None else Path(journal_path)
    partial = None
    if final_path is not None:
        final_path.parent.mkdir(parents=True, exist_ok=True)
        partial = final_path.with_name(final_path.name + ".partial")
        _remove_sqlite(partial)
    journal = Journal(partial)
    # Everything alive now (data, libraries) lives through the run: keep the cyclic
    # garbage collector from traversing it again and again during the hot loop.
    gc.freeze()
    try:
        result = run(journal, final_path)
    except BaseException:
        journal.close()
        if partial is not None:
            _remove_sqlite(partial)
        raise
    finally:
        gc.unfreeze()
    journal.close()
    if partial is not None and final_path is not None:
        _remove_sqlite(final_path)
        os.replace(partial, final_path)
    return result


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(str(path) + suffix)
