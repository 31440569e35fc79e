"""The strategy API: what user code implements and what it may call.

A strategy reacts to ``on_start``, ``on_bar``, ``on_fill`` and ``on_stop`` (and, on
level-2 data, ``on_quote``, ``on_trade`` and ``on_book``) and expresses order *intents*
with ``buy``, ``sell``, ``close`` and ``target``; every intent goes to the risk engine.
Sizes are whole units (``Decimal``-friendly), a fraction of equity, or a target
position; without a size the run's default sizing applies. ``cancel`` withdraws a
working order (cancels need no risk approval: they only ever reduce risk).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

import msgspec

from predator.core.numbers import from_decimal, to_decimal
from predator.execution.order import OrderFilled
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.market.l2 import QuoteTick, TradeTick
from predator.market.order_book import OrderBook
from predator.risk.position_sizing import PositionSizeManager
from predator.venue.orders import OrderRequest, OrderType, Side, TimeInForce

__all__ = ["Sizing", "Strategy", "StrategyContext"]

Number = Decimal | int | str


class Sizing(msgspec.Struct, frozen=True):
    """Default order size: ``all-in``, ``units:N`` or ``fraction:F`` (of equity)."""

    kind: str
    value: Decimal = Decimal(1)

    @property
    def units(self) -> Decimal | int:
        """The size as given, an ``int`` when whole (the fast, exact path)."""
        value = self.value
        return int(value) if value == value.to_integral_value() else value

    @classmethod
    def parse(cls, text: str) -> Sizing:
        """Parse the CLI form; raise ``ValueError`` with the accepted forms."""
        text = text.strip()
        if text == "all-in":
            return cls("fraction", Decimal(1))
        kind, _, value = text.partition(":")
        if kind in ("units", "fraction") and value:
            try:
                number = Decimal(value)
            except ArithmeticError:
                number = Decimal(-1)
            if number.is_finite() and number > 0 and (kind == "units" or number <= 1):
                return cls(kind, number)
        raise ValueError(
            f"invalid sizing {text!r}: expected all-in, units:N (N > 0) or fraction:F (0 < F <= 1)"
        )


class StrategyContext:
    """What the runner gives a strategy: its instrument, state queries, order submission."""

    def __init__(
        self,
        *,
        name: str,
        instrument: Instrument,
        sizing: Sizing,
        submit: Callable[[OrderRequest], bool],
        position: Callable[[], int],
        now_ns: Callable[[], int],
        account: str = "main",
        schedule_every: Callable[[int, Callable[[int], None]], None] | None = None,
        equity: Callable[[], int] | None = None,
        last_price: Callable[[], int | None] | None = None,
        sizer: PositionSizeManager | None = None,
        cancel: Callable[[str], bool] | None = None,
        open_orders: Callable[[], list[str]] | None = None,
    ) -> None:
        self.name = name
        self._cancel = cancel
        self._open_orders = open_orders or list
        self.equity = equity or (lambda: 0)
        self.last_price = last_price or (lambda: None)
        self.sizer = sizer or PositionSizeManager()
        self.account = account
        self._schedule_every = schedule_every
        self.instrument = instrument
        self.sizing = sizing
        self._submit = submit
        self._position = position
        self.now_ns = now_ns
        self._order_seq = 0
        self._order_ts: int | None = None

    def position(self) -> int:
        return self._position()

    def next_order_id(self) -> str:
        """``<strategy>-<kernel time>-<n>``: the n-th intent at that instant.

        Deterministic per instant, not per run, so a node restarted after a crash that
        replays the same instant produces the same ids and its intents stay idempotent.
        """
        now = self.now_ns()
        if now != self._order_ts:
            self._order_ts, self._order_seq = now, 0
        self._order_seq += 1
        return f"{self.name}-{now}-{self._order_seq}"

    def id_state(self) -> tuple[int | None, int]:
        """The id generator's state (instant, count), to undo ids taken by dry intents."""
        return self._order_ts, self._order_seq

    def restore_id_state(self, state: tuple[int | None, int]) -> None:
        self._order_ts, self._order_seq = state

    def submit(self, request: OrderRequest) -> bool:
        return self._submit(request)

    def cancel(self, client_order_id: str) -> bool:
        """Ask the venue to cancel one of this strategy's working orders."""
        if self._cancel is None:
            raise RuntimeError("this runtime cannot cancel orders")
        return self._cancel(client_order_id)

    def open_orders(self) -> list[str]:
        """Client order ids of this strategy's working orders, oldest first."""
        return self._open_orders()

    def schedule_every(self, interval_ns: int, callback: Callable[[int], None]) -> None:
        if self._schedule_every is None:
            raise RuntimeError("this runtime has no timers")
        self._schedule_every(interval_ns, callback)


class Strategy:
    """Base class of every strategy.

    Declare tunable parameters with their defaults in ``parameters``; they arrive as
    attributes. ``warmup`` is the number of bars before the strategy can signal
    (used, like backtesting.py, as the start of the buy & hold comparison).

    >>> class Hold(Strategy):
    ...     def on_bar(self, bar):
    ...         if not self.position:
    ...             self.buy()
    """

    name: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    warmup: int = 0

    def __init__(self, **params: Any) -> None:
        for key, default in self.parameters.items():
            setattr(self, key, params.get(key, default))
        self._ctx: StrategyContext | None = None

    # -- lifecycle (override) -----------------------------------------------------------
    def check_parameters(self) -> None:
        """Raise ``ValueError`` naming the problem if the parameters cannot work together.

        Called when the strategy is built, before any data is read.
        """

    def on_start(self) -> None:
        """Called once before the first bar."""

    def on_bar(self, bar: Bar) -> None:
        """Called on every bar, after the venue has processed it."""

    def on_fill(self, fill: OrderFilled) -> None:
        """Called for each fill of this strategy's orders."""

    def on_quote(self, quote: QuoteTick) -> None:
        """Called on every best bid/ask of the instrument (level-2 runs), after the venue
        has matched on it. ``self.ctx.last_price()`` is then its mid."""

    def on_trade(self, trade: TradeTick) -> None:
        """Called on every trade of the instrument on the venue (level-2 runs)."""

    def on_book(self, book: OrderBook) -> None:
        """Called after each depth update the node's book took (level-2 runs).

        ``book`` is the node's synchronised book (Binance sync rules): read it, never
        write it. It is only delivered while valid; after a sequence gap nothing comes
        until a snapshot resynchronises it (and the risk layer denies new exposure).
        """

    def on_stop(self) -> None:
        """Called once after the last bar."""

    # -- context --------------------------------------------------------------------------
    def bind(self, ctx: StrategyContext) -> None:
        """Attach the runner's context (done by the runner, not by user code)."""
        self._ctx = ctx

    @property
    def ctx(self) -> StrategyContext:
        if self._ctx is None:
            raise RuntimeError(f"strategy {type(self).__name__} is not attached to a runner")
        return self._ctx

    @property
    def instrument(self) -> Instrument:
        return self.ctx.instrument

    @property
    def position(self) -> int:
        """Signed open quantity (size-precision units); 0 when flat."""
        return self.ctx.position()

    @property
    def open_orders(self) -> list[str]:
        """Client order ids of this strategy's working orders (approved and not yet
        filled in full, canceled or rejected), oldest first."""
        return self.ctx.open_orders()

    def cancel(self, client_order_id: str) -> bool:
        """Ask the venue to cancel a working order of this strategy.

        False when the order is not working (already filled, canceled or rejected, or
        not this strategy's). The venue's answer arrives later: an ``OrderCanceled``,
        or fills when the cancel loses the race against them.
        """
        return self.ctx.cancel(client_order_id)

    def every(self, seconds: Number, callback: Callable[[int], None]) -> None:
        """Call ``callback(ts_ns)`` every ``seconds`` of kernel time (also between bars)."""
        interval = int(Decimal(seconds) * 1_000_000_000)
        if interval <= 0:
            raise ValueError(f"timer interval must be > 0 seconds, got {seconds}")
        self.ctx.schedule_every(interval, callback)

    def risk_size(self, stop: Number, risk_fraction: Number = "0.01") -> Decimal:
        """Units to trade so that a move from the last price to ``stop`` loses at most
        ``risk_fraction`` of equity, capped by the PositionSizeManager (by default 20 %
        of capital per position, 50 % in total). ``Decimal(0)`` when nothing fits.

        >>> # self.buy(self.risk_size(stop=bar_low))  # doctest: +SKIP
        """
        ctx = self.ctx
        instrument = ctx.instrument
        price = ctx.last_price()
        if price is None:
            return Decimal(0)
        stop_price = from_decimal(Decimal(stop), instrument.price_precision, "half_even")
        equity = ctx.equity()
        factor = instrument.notional_factor
        increment = instrument.size_increment
        wanted = ctx.sizer.size_for_risk(
            equity, Decimal(risk_fraction), price, stop_price, factor, increment
        )
        exposure = abs(self.position) * price * factor
        quantity = ctx.sizer.clamp(
            wanted, price, equity, exposure, factor, increment, position_exposure=exposure
        )
        return to_decimal(quantity, instrument.size_precision)

    def price(self, units: int) -> Decimal:
        """A price int as ``Decimal`` (``18036 -> Decimal('180.36')``)."""
        return to_decimal(units, self.ctx.instrument.price_precision)

    # -- intents ----------------------------------------------------------------------------
    def buy(
        self,
        units: Number | None = None,
        *,
        fraction: Number | None = None,
        limit: Number | None = None,
        stop: Number | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
    ) -> str | None:
        """Intend to buy; returns the client order id, or ``None`` if risk denied it.

        ``post_only`` (limit orders, level-2 venue): the venue rejects the order
        instead of letting it take liquidity.
        """
        return self._order(Side.BUY, units, fraction, limit, stop, tif, post_only)

    def sell(
        self,
        units: Number | None = None,
        *,
        fraction: Number | None = None,
        limit: Number | None = None,
        stop: Number | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
    ) -> str | None:
        """Intend to sell (or sell short); see :meth:`buy`."""
        return self._order(Side.SELL, units, fraction, limit, stop, tif, post_only)

    def close(self) -> str | None:
        """Close the whole open position (at fill time); no-op when flat."""
        position = self.position
        if not position:
            return None
        ctx = self.ctx
        side = Side.SELL if position > 0 else Side.BUY
        request = OrderRequest(
            client_order_id=ctx.next_order_id(),
            symbol=ctx.instrument.symbol,
            side=side,
            close_position=True,
            reduce_only=True,
            account=ctx.account,
        )
        return request.client_order_id if ctx.submit(request) else None

    def target(self, units: Number) -> str | None:
        """Trade towards a target position of ``units`` (signed)."""
        instrument = self.ctx.instrument
        wanted = from_decimal(Decimal(units), instrument.size_precision, "floor")
        delta = wanted - self.position
        if not delta:
            return None
        side = Side.BUY if delta > 0 else Side.SELL
        return self._submit_quantity(side, abs(delta), None, None, TimeInForce.GTC)

    def _order(
        self,
        side: Side,
        units: Number | None,
        fraction: Number | None,
        limit: Number | None,
        stop: Number | None,
        tif: TimeInForce,
        post_only: bool = False,
    ) -> str | None:
        ctx = self.ctx
        precision = ctx.instrument.size_precision
        if units is None and fraction is None:
            if ctx.sizing.kind == "units":
                units = ctx.sizing.units
            else:
                fraction = ctx.sizing.value
        if fraction is not None:
            price_p = ctx.instrument.price_precision
            request = OrderRequest(
                client_order_id=ctx.next_order_id(),
                symbol=ctx.instrument.symbol,
                side=side,
                order_type=_order_type(limit, stop),
                equity_fraction=str(Decimal(fraction)),
                limit_price=None if limit is None else from_decimal(Decimal(limit), price_p),
                stop_price=None if stop is None else from_decimal(Decimal(stop), price_p),
                tif=tif,
                account=ctx.account,
                post_only=post_only,
            )
            return request.client_order_id if ctx.submit(request) else None
        assert units is not None
        quantity = from_decimal(units if type(units) is int else Decimal(units), precision, "floor")
        return self._submit_quantity(side, quantity, limit, stop, tif, post_only)

    def _submit_quantity(
        self,
        side: Side,
        quantity: int,
        limit: Number | None,
        stop: Number | None,
        tif: TimeInForce,
        post_only: bool = False,
    ) -> str | None:
        ctx = self.ctx
        price_p = ctx.instrument.price_precision
        request = OrderRequest(
            client_order_id=ctx.next_order_id(),
            symbol=ctx.instrument.symbol,
            side=side,
            order_type=_order_type(limit, stop),
            quantity=quantity,
            limit_price=None if limit is None else from_decimal(Decimal(limit), price_p),
            stop_price=None if stop is None else from_decimal(Decimal(stop), price_p),
            tif=tif,
            account=ctx.account,
            post_only=post_only,
        )
        return request.client_order_id if ctx.submit(request) else None


def _order_type(limit: Number | None, stop: Number | None) -> OrderType:
    if limit is not None and stop is not None:
        return OrderType.STOP_LIMIT
    if limit is not None:
        return OrderType.LIMIT
    if stop is not None:
        return OrderType.STOP
    return OrderType.MARKET
