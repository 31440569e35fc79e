"""A simulation node on level-2 data: strategies trade a replayed real order book.

The kernel of bar runs (risk engine, execution engine, paper broker, portfolios, ledger,
journal, invariants, kill switches, breakers, reconciliation) with the
:class:`~predator.venue.L2PaperExchange` as its venue. The capture's events go on the
bus in receive-time order with the kernel clock at each event's time: the venue matches
on them, the :class:`~predator.node.l2_feed.MarketDataFeed` gives the risk layer and the
strategies their view. The equity curve is sampled every ``equity_interval_ms`` of data
time. A run is a pure function of (config, data): the same inputs, the same digest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any, cast

import msgspec

from predator.core.clock import TimeWarp
from predator.core.numbers import NotRepresentable, from_decimal
from predator.execution.order import OrderFilled
from predator.ledger.journal import Journal
from predator.market.bar import Bar
from predator.market.depth_loader import read_binance_capture
from predator.market.errors import DataFormatError
from predator.market.instrument import Instrument
from predator.market.l2 import BookDelta, BookSnapshot, QuoteTick, TradeTick
from predator.node.backtest import (
    BacktestConfig,
    BacktestError,
    BacktestResult,
    RunStarted,
    StrategySpec,
    _decimal,
    _finish_run,
    _slots,
    _strategy_parameters,
    run_with_journal,
)
from predator.node.kernel import Kernel
from predator.node.l2_capture import CaptureError, capture_instrument, capture_sha256
from predator.node.l2_feed import MarketDataFeed
from predator.node.l2_options import parse_latency, parse_queue_model
from predator.node.risk_settings import RiskSettings
from predator.risk.config import ConfigError
from predator.risk.pnl_tracker import AllocationRule
from predator.strategy.api import Sizing
from predator.strategy.runner import CancelOrder
from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel, FillMode
from predator.venue.l2_exchange import L2PaperExchange
from predator.venue.latency import ConstantDelay
from predator.venue.orders import Liquidity
from predator.venue.paper_exchange import PaperExchange

__all__ = ["L2Replay", "ReplayConfig", "ReplayError", "ReplayResult"]

ProgressCallback = Callable[[int, int | None], None]
"""``(events done, events in total or None while unknown)``."""

L2Event = BookSnapshot | BookDelta | QuoteTick | TradeTick


class ReplayError(BacktestError):
    """The replay was configured with a value it cannot use, or its data (a user error)."""


class ReplayConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an L2 replay depends on besides the capture files.

    Amounts are decimal strings (exact). ``commission`` is the taker fee (fraction of
    notional), ``maker_fee`` the fee of fills that rested (default: ``commission``;
    negative is a rebate). ``latency``: ``none``, ``constant:ENTRY_MS[,RESPONSE_MS[,
    MARKET_DATA_MS]]`` or ``lognormal:MEDIAN_MS[,SIGMA[,MARKET_DATA_MEDIAN_MS]]`` drawn
    from ``seed``. ``queue_model``: ``risk_averse``, ``prob_power[:N]`` (N = 2) or
    ``prob_log``. ``tick_size`` / ``lot_size`` default to one unit of the capture's
    decimals. The equity curve is sampled every ``equity_interval_ms`` of data time.
    The rest as :class:`~predator.node.BacktestConfig`.
    """

    strategy: str = "market_maker"
    params: dict[str, Any] = {}
    strategies: tuple[StrategySpec, ...] = ()
    cash: str = "10000"
    commission: str = "0"
    maker_fee: str | None = None
    commission_fixed: str = "0"
    commission_per_unit: str = "0"
    latency: str = "none"
    queue_model: str = "risk_averse"
    seed: int = 0
    symbol: str | None = None
    tick_size: str | None = None
    lot_size: str | None = None
    sizing: str = "all-in"
    equity_interval_ms: int = 1000
    journal: str | None = None
    finalize: bool = True
    check_invariants: bool = True
    risk: dict[str, Any] | None = None
    profit_allocation: dict[str, str] = {}

    def as_backtest(self) -> BacktestConfig:
        """The bar-run config sharing this run's strategies, cash and end-of-run policy."""
        return BacktestConfig(
            strategy=self.strategy,
            params=dict(self.params),
            strategies=self.strategies,
            cash=self.cash,
            commission=self.commission,
            commission_fixed=self.commission_fixed,
            commission_per_unit=self.commission_per_unit,
            sizing=self.sizing,
            journal=self.journal,
            finalize=self.finalize,
            check_invariants=self.check_invariants,
            risk=self.risk,
            profit_allocation=dict(self.profit_allocation),
        )


class ReplayResult(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of an L2 replay: the bar-run result plus what only L2 runs have."""

    backtest: BacktestResult
    events: int
    maker_fills: int
    taker_fills: int
    first_ts: int
    last_ts: int
    equity_interval_ms: int
    data_gaps: int

    @property
    def journal_digest(self) -> str:
        return self.backtest.journal_digest

    def summary(self) -> dict[str, Any]:
        """The JSON summary of ``predator replay --json``: ``predator backtest``'s keys
        (``bars`` is 0: a capture has none), plus ``events``, ``maker_fills``,
        ``taker_fills``, ``data_seconds``, ``equity_samples``, ``equity_interval_ms`` and
        ``data_gaps`` (sequence gaps in the depth stream)."""
        summary = self.backtest.summary()
        summary["bars"] = 0
        summary.update(
            events=self.events,
            maker_fills=self.maker_fills,
            taker_fills=self.taker_fills,
            data_seconds=float(Decimal(self.last_ts - self.first_ts).scaleb(-9)),
            equity_samples=len(self.backtest.equity_curve),
            equity_interval_ms=self.equity_interval_ms,
            data_gaps=self.data_gaps,
        )
        return summary


class _L2Venue(L2PaperExchange):
    """The L2 paper exchange as the kernel's venue: it answers every client call of the
    bar venue (``tests/venue/test_l2_api.py``), and matches on market data, not bars."""

    def on_bar(self, bar: Bar) -> None:
        """An L2 run publishes no bars; there is nothing to match on one."""


class L2Replay:
    """One replay of Binance capture files through the whole order path.

    >>> result = L2Replay(["btcusdt_20240808.jsonl.gz"], ReplayConfig()).run()
    ... # doctest: +SKIP
    """

    def __init__(
        self,
        paths: list[str | os.PathLike[str]],
        config: ReplayConfig | None = None,
        *,
        progress: ProgressCallback | None = None,
        progress_every: int = 8192,
        postmortem_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.config = config or ReplayConfig()
        self.postmortem_dir = postmortem_dir
        self._progress = progress
        self._progress_every = progress_every
        self.kernel: Kernel | None = None
        self.feed: MarketDataFeed | None = None
        self.venue: L2PaperExchange | None = None

    def run(self) -> ReplayResult:
        """Run to the end of the data; the journal file appears only when complete."""
        return run_with_journal(self.config.journal, self._run)

    # -- wiring --------------------------------------------------------------------------
    def _build(self, journal: Journal, instrument: Instrument, start_ts: int) -> Kernel:
        """Validate the config and wire the kernel around an L2 venue (user errors raise)."""
        try:
            return self._wire(journal, instrument, start_ts)
        except ReplayError:
            raise
        except BacktestError as exc:  # the checks shared with bar runs
            raise ReplayError(str(exc)) from None

    def _wire(self, journal: Journal, instrument: Instrument, start_ts: int) -> Kernel:
        config = self.config
        money_p = instrument.money_precision
        cash_value = _decimal("cash", config.cash, minimum=Decimal(0), strict=True)
        try:
            cash = from_decimal(cash_value, money_p)
        except NotRepresentable:
            raise ReplayError(f"cash {config.cash} has more than {money_p} decimals") from None
        try:
            sizing = Sizing.parse(config.sizing)
            commission = CommissionModel(
                instrument,
                rate=_decimal("commission", config.commission),
                maker_rate=None
                if config.maker_fee is None
                else _decimal("maker_fee", config.maker_fee),
                fixed=_decimal("commission_fixed", config.commission_fixed, minimum=Decimal(0)),
                per_unit=_decimal(
                    "commission_per_unit", config.commission_per_unit, minimum=Decimal(0)
                ),
            )
            latency = parse_latency(config.latency, config.seed)
            queue = parse_queue_model(config.queue_model)
        except ValueError as exc:
            raise ReplayError(str(exc)) from None
        if config.equity_interval_ms <= 0:
            raise ReplayError(f"equity_interval_ms must be > 0, got {config.equity_interval_ms}")
        try:
            risk = RiskSettings.from_config(config.risk, instrument)
        except ConfigError as exc:
            raise ReplayError(str(exc)) from None
        backtest = config.as_backtest()
        slots = _slots(backtest, cash)
        try:
            shares = config.profit_allocation.items()
            rules = [AllocationRule(name, share) for name, share in shares]
            if rules and sum(rule.fraction for rule in rules) != 1:
                raise ValueError("profit allocation shares must add up to 1")
        except (ValueError, ArithmeticError) as exc:
            raise ReplayError(f"profit allocation: {exc}") from None
        single = len(slots) == 1
        venue = _L2Venue(
            clock=TimeWarp.virtual(start_ts),  # until the kernel hands it its own clock
            instruments=[instrument],
            cash=slots[0].capital if single else 0,
            commission=commission,
            queue_model=queue,
            latency=latency,
        )
        if not single:
            for slot in slots:
                venue.open_account(slot.account, slot.capital)
        self.venue = venue
        kernel = Kernel(
            instrument=instrument,
            start_ts=start_ts,
            slots=slots,
            sizing=sizing,
            commission=commission,
            fill_model=BarFillModel(FillMode.NEXT_OPEN),  # unused: the venue is given
            risk=risk,
            journal=journal,
            check_invariants=config.check_invariants,
            profit_allocation=rules,
            # The L2 venue answers the bar venue's client API; the kernel only calls that.
            exchange=cast(PaperExchange, venue),
            snapshot_every=None,
            postmortem_dir=self.postmortem_dir,
        )
        bus = kernel.bus
        # The venue hears each event first (as it hears a bar first in bar runs), then
        # the feed gives the node its view of the same event.
        bus.subscribe(BookSnapshot, venue.on_snapshot)
        bus.subscribe(BookDelta, venue.on_delta)
        bus.subscribe(QuoteTick, venue.on_quote)
        bus.subscribe(TradeTick, venue.on_trade)
        market_data = None if latency is None else latency.market_data
        if isinstance(market_data, ConstantDelay) and market_data.ns == 0:
            market_data = None  # the node sees each event when the venue does
        self.feed = MarketDataFeed(
            bus=bus,
            clock=kernel.clock,
            scheduler=kernel.scheduler,
            risk=kernel.risk,
            runners=list(kernel.runners.values()),
            symbol=instrument.symbol,
            delay=market_data,
        )
        bus.register(CancelOrder, self._cancel)
        self._zero_latency = latency is None
        self._fills = {Liquidity.MAKER: 0, Liquidity.TAKER: 0}
        bus.subscribe(OrderFilled, self._count_fill)
        return kernel

    def _cancel(self, command: CancelOrder) -> bool:
        """A strategy's cancel: sent to the venue when the order is its own and working."""
        kernel = self.kernel
        assert kernel is not None
        order = kernel.execution.orders.get(command.client_order_id)
        if order is None or order.strategy != command.strategy or not order.is_open:
            return False
        kernel.broker.cancel(command.client_order_id)
        return True

    def _count_fill(self, fill: OrderFilled) -> None:
        self._fills[fill.liquidity] += 1

    def _announce(self, kernel: Kernel, instrument: Instrument) -> None:
        """Journal what the run is a function of (``RunStarted``, the first event)."""
        config = self.config
        kernel.journal.set_meta("format", "predator-journal/1")
        specs = config.as_backtest().strategy_specs()
        recorded = msgspec.structs.replace(
            config,
            journal=None,
            params={},
            strategies=tuple(
                StrategySpec(
                    strategy=specs[i].strategy,
                    params=_strategy_parameters(slot.strategy),
                    allocation=str(Fraction(slot.capital, kernel.initial_capital())),
                    engine=slot.engine,
                    name=slot.name,
                )
                for i, slot in enumerate(kernel.slots)
            ),
        )
        kernel.bus.publish(
            RunStarted(
                ts=kernel.clock.now_ns(),
                config=msgspec.to_builtins(recorded),
                data_sha256=capture_sha256(self.paths),
                data_format="binance-capture",
                bars=0,
                instrument=instrument,
            )
        )

    # -- the run -------------------------------------------------------------------------
    def _events(self, instrument: Instrument) -> Iterator[L2Event]:
        try:
            yield from read_binance_capture(self.paths, symbol=instrument.symbol)
        except DataFormatError as exc:
            raise ReplayError(str(exc)) from None

    def _run(self, journal: Journal, final_path: Path | None) -> ReplayResult:
        config = self.config
        try:
            instrument = capture_instrument(
                self.paths,
                symbol=config.symbol,
                tick_size=config.tick_size,
                lot_size=config.lot_size,
            )
        except CaptureError as exc:
            raise ReplayError(str(exc)) from None
        events = self._events(instrument)
        first = next(events, None)
        if first is None:
            raise ReplayError(f"{self.paths[0]}: no market data to replay")
        kernel = self.kernel = self._build(journal, instrument, first.ts)
        feed = self.feed
        assert feed is not None and self.venue is not None
        clock, bus, scheduler = kernel.clock, kernel.bus, kernel.scheduler
        self._announce(kernel, instrument)
        feed.start()
        for runner in kernel.runners.values():
            runner.start()
        interval = config.equity_interval_ms * 1_000_000
        self._last_sample: int | None = None
        scheduler.schedule_in(interval, self._sample, interval)
        progress, every = self._progress, self._progress_every
        publish, set_time, now_ns = bus.publish, clock.set, clock.now_ns
        count = 0
        last_ts = first.ts
        for event in chain((first,), events):
            ts = event.ts
            if ts > now_ns():
                due = scheduler.next_time
                if due is not None and due <= ts:
                    scheduler.run_until(ts)
                set_time(ts)
            publish(event)
            last_ts = ts
            count += 1
            if progress is not None and count % every == 0:
                progress(count, None)
        if feed.last_observed_at is not None and feed.last_observed_at > now_ns():
            scheduler.run_until(feed.last_observed_at)  # what the node had yet to see
        self.venue.finalize()  # requests on their way arrive, reports are delivered
        if self._last_sample != now_ns():
            self._record_equity()
        backtest = _finish_run(
            kernel,
            config.as_backtest(),
            journal,
            final_path,
            count,
            None if progress is None else lambda done, total: progress(done, total),
        )
        return ReplayResult(
            backtest=backtest,
            events=count,
            maker_fills=self._fills[Liquidity.MAKER],
            taker_fills=self._fills[Liquidity.TAKER],
            first_ts=first.ts,
            last_ts=last_ts,
            equity_interval_ms=config.equity_interval_ms,
            data_gaps=feed.sync.gaps,
        )

    # -- equity sampling -----------------------------------------------------------------
    def _sample(self, interval: int) -> None:
        self._record_equity()
        kernel = self.kernel
        assert kernel is not None
        if self._zero_latency:
            # With latency, requests and reports in flight would read as mismatches:
            # reconciliation then runs once, at the end, when nothing is in flight.
            kernel.reconciliation.maybe_check(kernel.clock.now_ns())
        kernel.scheduler.schedule_in(interval, self._sample, interval)

    def _record_equity(self) -> None:
        """One point of the equity curve: every pool at the node's last mid."""
        kernel = self.kernel
        assert kernel is not None
        now = kernel.clock.now_ns()
        self._last_sample = now
        symbol = kernel.instrument.symbol
        mark = kernel.risk.last_price.get(symbol)
        if mark is not None:
            kernel.closes.append(mark)
        elif kernel.closes:
            mark = kernel.closes[-1]
        factor = kernel.instrument.notional_factor
        equity = 0
        exposed = False
        for name, portfolio in kernel.portfolios.items():
            pool = portfolio.cash
            quantity = portfolio.positions[symbol].quantity
            if quantity:
                exposed = True
                pool += quantity * (mark or 0) * factor
            equity += pool
            protections = kernel.protections.get(name)
            if protections is not None:
                protections.on_equity(now, pool)
        kernel.curve.record(equity, exposed)
        settings = kernel.settings
        if settings.max_loss_from_peak is not None:
            kernel.kill_switch.check_loss(equity, now)
        if settings.daily_loss_limit is not None:
            kernel.kill_switch.check_daily_loss(equity, now)
