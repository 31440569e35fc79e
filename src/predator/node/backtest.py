"""A simulation node on bar data: the whole order path, wired on one bus.

Strategy -> RiskEngine -> ExecutionEngine -> PaperBroker -> PaperExchange, fills back
to the Portfolio and the double-entry Ledger, every state change journaled. A run is a
pure function of (config, data): the same inputs give the same journal digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec

from predator.core.bus import MessageBus
from predator.core.clock import TimeWarp
from predator.core.events import Event
from predator.core.numbers import NotRepresentable, from_decimal
from predator.execution.execution_engine import ExecutionEngine
from predator.execution.order import OrderCanceled, OrderFilled, OrderRejected
from predator.execution.venue_client import PaperBroker
from predator.ledger.journal import Journal
from predator.ledger.ledger import Ledger
from predator.market.bar import Bar
from predator.market.bar_loader import BarFeed
from predator.market.instrument import Instrument
from predator.portfolio.portfolio import Portfolio
from predator.portfolio.position import ClosedTrade
from predator.portfolio.stats import EquityCurve, Performance, performance
from predator.risk.risk_engine import RiskDecision, RiskEngine
from predator.strategy.api import Sizing
from predator.strategy.registry import build_strategy
from predator.strategy.runner import StrategyRunner
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
]

ProgressCallback = Callable[[int, int], None]


class BacktestError(ValueError):
    """The backtest was configured with a value it cannot use (a user error)."""


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a bar backtest depends on besides the data. Defaults as backtesting.py.

    Amounts are decimal strings (exact): ``cash`` in the quote currency, ``commission``
    a fraction of notional, ``commission_fixed`` per order, ``commission_per_unit`` per
    unit. ``fill`` is ``next-open`` or ``close``; ``sizing`` the default order size
    (``all-in``, ``units:N``, ``fraction:F``). ``journal=None`` keeps the journal in memory.
    """

    strategy: str = "sma_cross"
    params: dict[str, Any] = {}
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


class RunStarted(Event, frozen=True, kw_only=True):
    """First journal event: what this run is a function of."""

    config: dict[str, Any]
    data_sha256: str
    data_format: str
    bars: int
    instrument: Instrument


class RunCompleted(Event, frozen=True, kw_only=True):
    """Last journal event: a journal without it is incomplete."""

    final_equity: int
    trades: int
    fills: int
    orders: int


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


class _Wiring:
    """The components of one run, connected on one bus (built by :class:`Backtest`)."""

    def __init__(self, feed: BarFeed, config: BacktestConfig, journal: Journal) -> None:
        instrument = feed.instrument
        self.instrument = instrument
        self._notional_factor = instrument.notional_factor
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
        self.strategy = build_strategy(config.strategy, config.params)

        start = feed.first_ts if len(feed) else 0
        self.clock = clock = TimeWarp.virtual(start)
        self.bus = bus = MessageBus()
        self.journal = journal
        self.ledger = Ledger(instrument.quote_currency, money_p)
        self.exchange = PaperExchange(
            clock=clock,
            instruments=[instrument],
            cash=cash,
            commission=commission,
            fill_model=fill_model,
        )
        # Subscription order is delivery order: the venue sees a bar first, then the
        # equity curve is taken, then strategies react.
        bus.subscribe(Bar, self.exchange.on_bar)
        self.broker = PaperBroker(bus=bus, exchange=self.exchange)
        self.execution = ExecutionEngine(bus=bus, clock=clock, client=self.broker)
        self.portfolio = Portfolio(
            bus=bus, ledger=self.ledger, instruments=[instrument], initial_cash=cash, ts=start
        )
        self.risk = RiskEngine(bus=bus, clock=clock, portfolio=self.portfolio)
        self.curve = EquityCurve()
        self.closes: list[int] = []
        bus.subscribe(Bar, self._on_bar)
        self.runner = StrategyRunner(
            bus=bus,
            clock=clock,
            portfolio=self.portfolio,
            strategy=self.strategy,
            instrument=instrument,
            sizing=sizing,
        )
        self.rejections: dict[str, int] = {}
        bus.subscribe(OrderRejected, self._count_rejection)
        bus.subscribe(OrderCanceled, self._count_rejection)
        bus.subscribe(RiskDecision, self._count_denial)
        self.fills = 0
        bus.subscribe(OrderFilled, self._count_fill)
        bus.subscribe(Event, journal.append, where=_is_journaled)
        self.balance_checks = 0
        if config.check_invariants:
            bus.subscribe(Event, self._check_invariants, where=_is_journaled)

    def strategy_parameters(self) -> dict[str, Any]:
        """The strategy's effective parameters (after defaults and type conversion)."""
        names = sorted(type(self.strategy).parameters)
        return {name: getattr(self.strategy, name) for name in names}

    def _on_bar(self, bar: Bar) -> None:
        position = self.portfolio.positions[bar.symbol]
        quantity = position.quantity
        self.closes.append(bar.close)
        equity = self.portfolio.cash
        if quantity:
            equity += quantity * bar.close * self._notional_factor
        self.curve.record(equity, quantity != 0)

    def _check_invariants(self, _event: Event) -> None:
        self.portfolio.check_balance_equation()
        self.balance_checks += 1

    def _count_rejection(self, event: OrderRejected | OrderCanceled) -> None:
        if event.reason not in ("canceled", "expired"):
            self.rejections[event.reason] = self.rejections.get(event.reason, 0) + 1

    def _count_denial(self, event: RiskDecision) -> None:
        if not event.approved:
            key = f"risk: {event.reason}"
            self.rejections[key] = self.rejections.get(key, 0) + 1

    def _count_fill(self, _fill: OrderFilled) -> None:
        self.fills += 1


def _is_journaled(event_type: type) -> bool:
    return bool(getattr(event_type, "journaled", False))


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
    ) -> None:
        self.feed = feed
        self.config = config or BacktestConfig()
        self._progress = progress
        self._progress_every = progress_every

    def run(self) -> BacktestResult:
        """Run to the end of the data; the journal file appears only when complete."""
        config = self.config
        final_path = None if config.journal is None else Path(config.journal)
        partial = None
        if final_path is not None:
            final_path.parent.mkdir(parents=True, exist_ok=True)
            partial = final_path.with_name(final_path.name + ".partial")
            _remove_sqlite(partial)
        journal = Journal(partial)
        try:
            result = self._run(journal, final_path)
        except BaseException:
            journal.close()
            if partial is not None:
                _remove_sqlite(partial)
            raise
        journal.close()
        if partial is not None and final_path is not None:
            _remove_sqlite(final_path)
            os.replace(partial, final_path)
        return result

    def _run(self, journal: Journal, final_path: Path | None) -> BacktestResult:
        feed, config = self.feed, self.config
        wiring = _Wiring(feed, config, journal)
        instrument = wiring.instrument
        clock, bus = wiring.clock, wiring.bus
        journal.set_meta("format", "predator-journal/1")
        bus.publish(
            RunStarted(
                ts=clock.now_ns(),
                config=msgspec.to_builtins(
                    msgspec.structs.replace(
                        config, journal=None, params=wiring.strategy_parameters()
                    )
                ),
                data_sha256=_file_sha256(feed.path),
                data_format=feed.format,
                bars=len(feed),
                instrument=instrument,
            )
        )
        wiring.runner.start()
        total = len(feed)
        progress, every = self._progress, self._progress_every
        publish, set_time = bus.publish, clock.set
        for done, bar in enumerate(feed, 1):
            set_time(bar.ts)
            publish(bar)
            if progress is not None and done % every == 0:
                progress(done, total)
        wiring.runner.stop()
        portfolio = wiring.portfolio
        if config.finalize and portfolio.position_quantity(instrument.symbol):
            wiring.strategy.close()
            wiring.exchange.finalize()
            marks = {instrument.symbol: wiring.closes[-1]} if wiring.closes else {}
            wiring.curve.restate_last(portfolio.equity(marks))
        if progress is not None:
            progress(total, total)
        warmup = max(0, min(int(wiring.strategy.warmup), len(wiring.closes) - 1))
        closes = wiring.closes
        buy_hold = (
            Fraction(closes[-1] - closes[warmup], closes[warmup])
            if closes and closes[warmup]
            else Fraction(0)
        )
        perf = performance(
            curve=wiring.curve,
            initial=portfolio.initial_cash,
            trades=portfolio.closed_trades,
            fees=portfolio.fees,
            realized_pnl=portfolio.realized_pnl,
            money_precision=instrument.money_precision,
            buy_hold=buy_hold,
        )
        final_equity = wiring.curve.values[-1] if wiring.curve.values else portfolio.initial_cash
        bus.publish(
            RunCompleted(
                ts=clock.now_ns(),
                final_equity=final_equity,
                trades=len(portfolio.closed_trades),
                fills=wiring.fills,
                orders=len(wiring.execution.orders),
            )
        )
        journal.flush()
        return BacktestResult(
            performance=perf,
            trades_list=list(portfolio.closed_trades),
            instrument=instrument,
            money_precision=instrument.money_precision,
            bars=total,
            fills=wiring.fills,
            orders=len(wiring.execution.orders),
            rejections=dict(sorted(wiring.rejections.items())),
            journal_digest=journal.digest,
            journal_events=journal.last_seq,
            journal_path=None if final_path is None else str(final_path),
            balance_checks=wiring.balance_checks,
            equity_curve=wiring.curve.values,
        )


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(str(path) + suffix)
