"""The paper exchange in bar mode: a venue that fills orders against OHLCV bars.

It keeps its own account (cash, positions) exactly as a real venue would, so that
our portfolio can later be reconciled against it. Market orders fill at the next
bar's open (default) or at the current close; limit, stop and stop-limit orders
trigger on the bar's high/low with a conservative fill price.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from math import floor

import msgspec

from predator.core.clock import Clock
from predator.core.numbers import parse_fraction, to_decimal
from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.venue.fees import CommissionModel
from predator.venue.fill_model import BarFillModel, FillMode
from predator.venue.orders import (
    Liquidity,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
    VenueReport,
)

__all__ = ["PaperExchange", "TransferRefused", "VenueAccount", "VenueTransfer", "move_cash"]

ReportSink = Callable[[VenueReport], None]


class _RestingOrder:
    __slots__ = ("arrival_bar", "request", "stop_triggered", "venue_order_id")

    def __init__(self, request: OrderRequest, venue_order_id: str, arrival_bar: int) -> None:
        self.request = request
        self.venue_order_id = venue_order_id
        self.stop_triggered = False
        self.arrival_bar = arrival_bar  # bars of its symbol seen when it arrived


class VenueAccount:
    """One sub-account at the venue: its own cash and positions (a capital pool)."""

    __slots__ = ("cash", "name", "positions")

    def __init__(self, name: str, cash: int, symbols: Iterable[str]) -> None:
        self.name = name
        self.cash = cash
        self.positions: dict[str, int] = dict.fromkeys(symbols, 0)


class VenueTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """One transfer of cash between two sub-accounts, as the venue records it.

    ``transfer_id`` is ``X<n>`` for the venue's n-th transfer (the venue's own record,
    queried by reconciliation and recovery like its trade log).
    """

    transfer_id: str
    ts: int
    from_account: str
    to_account: str
    amount: int


def move_cash(
    accounts: Mapping[str, VenueAccount],
    from_account: str,
    to_account: str,
    amount: int,
    *,
    halted: bool,
    free: Callable[[], int],
) -> None:
    """Move ``amount`` of ``free()`` cash between sub-accounts, or raise
    :class:`TransferRefused` (nothing moves): the rule every paper venue applies."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise TransferRefused(from_account, to_account, amount, "amount must be an int > 0")
    for name in (from_account, to_account):
        if name not in accounts:
            raise TransferRefused(from_account, to_account, amount, f"no account {name!r}")
    if from_account == to_account:
        raise TransferRefused(from_account, to_account, amount, "same account")
    if halted:
        raise TransferRefused(from_account, to_account, amount, "venue is halted")
    available = free()
    if amount > available:
        cash = accounts[from_account].cash
        raise TransferRefused(
            from_account,
            to_account,
            amount,
            f"{from_account} has {available} units free to transfer (cash {cash}; the rest"
            " is needed by its positions and open orders)",
        )
    accounts[from_account].cash -= amount
    accounts[to_account].cash += amount


class TransferRefused(ValueError):
    """The venue refused a transfer between sub-accounts; ``reason`` says why, in one line."""

    def __init__(self, from_account: str, to_account: str, amount: int, reason: str) -> None:
        super().__init__(f"transfer of {amount} units {from_account} -> {to_account}: {reason}")
        self.from_account = from_account
        self.to_account = to_account
        self.amount = amount
        self.reason = reason


class PaperExchange:
    """A simulated venue matching orders against bars, with its own exact account.

    ``cash`` is in the money unit of the instruments (all share one quote currency) and
    funds the ``main`` account; :meth:`open_account` adds isolated sub-accounts, as real
    venues offer, so that capital pools cannot spend each other's margin.
    ``leverage`` is 1 / margin requirement (1 = fully funded; shorts need margin too).
    Reports go to ``report`` (the venue client publishes them on the bus).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        instruments: Iterable[Instrument],
        cash: int,
        commission: CommissionModel | Mapping[str, CommissionModel],
        fill_model: BarFillModel | None = None,
        leverage: Decimal | int = 1,
        report: ReportSink | None = None,
    ) -> None:
        self._clock = clock
        self.instruments = {i.symbol: i for i in instruments}
        if not self.instruments:
            raise ValueError("a PaperExchange needs at least one instrument")
        self._commission: dict[str, CommissionModel] = (
            dict(commission)
            if isinstance(commission, Mapping)
            else dict.fromkeys(self.instruments, commission)
        )
        self.fill_model = fill_model or BarFillModel()
        self.leverage = Fraction(Decimal(leverage))
        if self.leverage <= 0:
            raise ValueError(f"leverage must be > 0, got {leverage}")
        self._unit_leverage = self.leverage == 1
        self._factors = {s: i.notional_factor for s, i in self.instruments.items()}
        self.accounts: dict[str, VenueAccount] = {}
        self.open_account("main", cash)
        self._marks: dict[str, int] = {}
        self._last_bar: dict[str, Bar] = {}
        self._bars_seen: dict[str, int] = {}
        self._outcomes: dict[str, VenueReport] = {}
        self._orders: list[_RestingOrder] = []
        self._known_ids: set[str] = set()
        self._report: ReportSink = report or (lambda _report: None)
        self._venue_order_seq = 0
        self._trade_seq = 0
        self.trade_log: list[VenueOrderFilled] = []
        """Every fill this venue reported, in trade order (``trade_log[n - 1]`` is ``T<n>``)."""
        self.halted = False
        self.transfer_log: list[VenueTransfer] = []
        """Every transfer between sub-accounts, in order (``transfer_log[n - 1]`` is ``X<n>``)."""

    # -- accounts -----------------------------------------------------------------------
    def open_account(self, name: str, cash: int) -> VenueAccount:
        """Create the sub-account ``name`` funded with ``cash`` money units."""
        if name in self.accounts:
            raise ValueError(f"venue account {name!r} already exists")
        account = VenueAccount(name, cash, self.instruments)
        self.accounts[name] = account
        return account

    def transferable(self, account: str) -> int:
        """Money units ``account`` may transfer out now: free cash its positions and open
        orders do not need (0 for an unknown account).

        A position's margin and each resting order that may open exposure (its opening
        quantity at its limit price, or the mark, plus its fee; an equity-fraction order
        its fraction of the margin available) are reserved. Closing orders reserve nothing.
        """
        book = self.accounts.get(account)
        if book is None:
            return 0
        available = self.margin_available(account)
        reserved: Fraction | int = 0
        fraction = Fraction(0)
        for resting in self._orders:
            request = resting.request
            if request.account != account or request.close_position or request.reduce_only:
                continue
            if request.equity_fraction is not None:
                fraction += parse_fraction(request.equity_fraction)
                continue
            symbol = request.symbol
            held = book.positions.get(symbol, 0)
            closable = abs(held) if held * request.side < 0 else 0
            opening = max(0, request.quantity - closable)
            if not opening:
                continue
            mark = self._marks.get(symbol)
            price = request.limit_price or request.stop_price or mark
            if price is None:
                return 0  # no price to size the reserve: nothing is free (fail closed)
            if mark is not None and request.side is Side.BUY:
                price = max(price, mark)
            commission = self._commission[symbol]
            need = opening * commission.unit_cost(price) + commission.fixed
            reserved += need if self._unit_leverage else need / self.leverage
        free = available - reserved
        if fraction:
            free -= available * min(fraction, Fraction(1))
        return max(0, min(book.cash, floor(free)))

    def transfer(self, from_account: str, to_account: str, amount: int) -> VenueTransfer:
        """Move ``amount`` money units of free cash from one sub-account to another.

        Raises :class:`TransferRefused` (nothing moves) for an unknown or identical account,
        an amount that is not a positive int, a halted venue, or more than
        :meth:`transferable` allows (cash never goes negative, positions and open orders
        keep what they need). Returns the venue's record of the transfer.
        """
        move_cash(
            self.accounts,
            from_account,
            to_account,
            amount,
            halted=self.halted,
            free=lambda: self.transferable(from_account),
        )
        record = VenueTransfer(
            transfer_id=f"X{len(self.transfer_log) + 1}",
            ts=self._clock.now_ns(),
            from_account=from_account,
            to_account=to_account,
            amount=amount,
        )
        self.transfer_log.append(record)
        return record

    @property
    def cash(self) -> int:
        """Cash of the ``main`` account."""
        return self.accounts["main"].cash

    @cash.setter
    def cash(self, value: int) -> None:
        self.accounts["main"].cash = value

    @property
    def positions(self) -> dict[str, int]:
        """Positions of the ``main`` account."""
        return self.accounts["main"].positions

    # -- wiring -----------------------------------------------------------------------
    def use_clock(self, clock: Clock) -> None:
        """Read time from ``clock`` from now on (a restarted node's simulation clock)."""
        self._clock = clock

    def connect(self, report: ReportSink) -> None:
        """Send every report to ``report`` (the venue client)."""
        self._report = report

    # -- client API -------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> None:
        """Accept or reject ``request``; accepted orders rest until they can fill."""
        reason, detail = self._validate(request)
        if reason is not None:
            rejected = VenueOrderRejected(
                ts=self._clock.now_ns(),
                client_order_id=request.client_order_id,
                reason=reason,
                detail=detail,
            )
            if reason is not RejectReason.DUPLICATE_ORDER_ID:
                self._outcomes[request.client_order_id] = rejected
            self._report(rejected)
            return
        self._known_ids.add(request.client_order_id)
        self._venue_order_seq += 1
        resting = _RestingOrder(
            request, f"V{self._venue_order_seq}", self._bars_seen.get(request.symbol, 0)
        )
        self._report(
            VenueOrderAccepted(
                ts=self._clock.now_ns(),
                client_order_id=request.client_order_id,
                venue_order_id=resting.venue_order_id,
            )
        )
        bar = self._last_bar.get(request.symbol)
        if (
            request.order_type is OrderType.MARKET
            and self.fill_model.market_fill is FillMode.CLOSE
            and bar is not None
        ):
            self._execute(resting, bar.close, Liquidity.TAKER)
            return
        self._orders.append(resting)

    def cancel(self, client_order_id: str, reason: str = "canceled by client") -> bool:
        """Cancel a resting order; False when it is not open (already filled or unknown)."""
        for resting in self._orders:
            if resting.request.client_order_id == client_order_id:
                self._orders.remove(resting)
                self._cancelled(resting, "canceled", reason)
                return True
        return False

    def open_orders(self) -> list[OrderRequest]:
        """Requests still resting, in arrival order."""
        return [resting.request for resting in self._orders]

    def fills_since(self, trade_seq: int) -> list[VenueOrderFilled]:
        """The fills after venue trade sequence ``trade_seq`` (0: all), in trade order.

        Trade ``T<n>`` has sequence ``n``; a client that has seen up to ``n`` asks for
        ``fills_since(n)``, as it would ask a real venue for its trades since an id.
        """
        if trade_seq < 0:
            raise ValueError(f"trade_seq must be >= 0, got {trade_seq}")
        return self.trade_log[trade_seq:]

    @property
    def trade_seq(self) -> int:
        """Sequence number of the last trade (0 before the first)."""
        return self._trade_seq

    def account_snapshot(self, account: str = "main") -> tuple[int, dict[str, int]]:
        """``(cash, positions)`` of ``account`` as the venue holds them (copies)."""
        book = self.accounts[account]
        return book.cash, dict(book.positions)

    # -- market data --------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> None:
        """Match resting orders of ``bar.symbol`` against ``bar`` (FIFO)."""
        symbol = bar.symbol
        last = self._last_bar.get(symbol)
        if last is not None and bar.ts <= last.ts:
            return  # already matched (a restarted client replays it): market data is ours
        self._last_bar[symbol] = bar
        self._bars_seen[symbol] = self._bars_seen.get(symbol, 0) + 1
        self._marks[symbol] = bar.open
        if self._orders:
            self._match(bar)
        self._marks[symbol] = bar.close

    def finalize(self, only: Iterable[str] | None = None) -> None:
        """Give orders sent on the last bar one more pass over that bar.

        This is backtesting.py's convention for closing trades at the end of a run
        (they fill at the last bar's open in next-open mode); it keeps our results
        comparable with it to the cent. ``only`` restricts the pass to those client
        order ids (the closing orders of a second pass).
        """
        wanted = None if only is None else set(only)
        for symbol, bar in self._last_bar.items():
            self._marks[symbol] = bar.open
            self._match(bar, arrived_on_bar=self._bars_seen[symbol], only=wanted)
            self._marks[symbol] = bar.close

    # -- account ----------------------------------------------------------------------
    def order_outcome(self, client_order_id: str) -> VenueReport | None:
        """The venue's final answer on an order (rejected, canceled or fully filled), or
        ``None`` while it rests or if the venue never saw it: what a client asks after
        losing a report."""
        return self._outcomes.get(client_order_id)

    def knows_order(self, client_order_id: str) -> bool:
        """Whether this venue ever received ``client_order_id`` (accepted or rejected).

        An order the venue never received (lost before it: a disconnect, an overloaded
        gateway answering for it) is unknown, the answer a real venue's order-status query
        gives (Binance ``-2013 Order does not exist``)."""
        return client_order_id in self._known_ids or client_order_id in self._outcomes

    def last_bar(self, symbol: str) -> Bar | None:
        """The last bar the venue matched for ``symbol``."""
        return self._last_bar.get(symbol)

    def mark(self, symbol: str) -> int | None:
        """The last price the venue knows for ``symbol``."""
        return self._marks.get(symbol)

    def equity(self, account: str = "main") -> int:
        """Cash plus open positions at their marks, in money units."""
        book = self.accounts[account]
        equity = book.cash
        for symbol, quantity in book.positions.items():
            if quantity:
                equity += quantity * self._marks[symbol] * self._factors[symbol]
        return equity

    def margin_available(self, account: str = "main") -> Fraction | int:
        """Equity not tied up as margin by open positions (never negative)."""
        used = 0
        for symbol, quantity in self.accounts[account].positions.items():
            if quantity:
                used += abs(quantity) * self._marks[symbol] * self._factors[symbol]
        if self._unit_leverage:  # exact integers on the common, fully funded path
            return max(0, self.equity(account) - used)
        return max(Fraction(0), self.equity(account) - used / self.leverage)

    # -- internals ----------------------------------------------------------------------
    def _validate(self, request: OrderRequest) -> tuple[RejectReason | None, str]:
        if self.halted:
            return RejectReason.VENUE_HALTED, "venue is halted"
        if request.client_order_id in self._known_ids:
            return RejectReason.DUPLICATE_ORDER_ID, request.client_order_id
        instrument = self.instruments.get(request.symbol)
        if instrument is None:
            return RejectReason.UNKNOWN_INSTRUMENT, request.symbol
        if request.account not in self.accounts:
            return RejectReason.UNKNOWN_ACCOUNT, request.account
        sized = (
            (request.quantity != 0)
            + (request.equity_fraction is not None)
            + bool(request.close_position)
        )
        if sized != 1:
            return RejectReason.INVALID_SIZE, "exactly one of quantity, fraction, close"
        if request.quantity < 0 or request.quantity % instrument.size_increment:
            return RejectReason.INVALID_SIZE, f"quantity {request.quantity}"
        if request.equity_fraction is not None:
            try:
                fraction = Decimal(request.equity_fraction)
            except ArithmeticError:
                return RejectReason.INVALID_SIZE, f"fraction {request.equity_fraction!r}"
            if not fraction.is_finite() or not 0 < fraction <= 1:
                return RejectReason.INVALID_SIZE, f"fraction {fraction} outside (0, 1]"
            if request.reduce_only:
                return RejectReason.INVALID_SIZE, "reduce-only orders are sized in units or close"
        kind = request.order_type
        needs_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
        for needed, price, name in (
            (needs_limit, request.limit_price, "limit"),
            (needs_stop, request.stop_price, "stop"),
        ):
            if needed and (price is None or price <= 0 or price % instrument.price_increment):
                return RejectReason.INVALID_PRICE, f"{name} price {price}"
        return None, ""

    def _match(
        self, bar: Bar, arrived_on_bar: int | None = None, only: set[str] | None = None
    ) -> None:
        symbol = bar.symbol
        for resting in list(self._orders):
            if resting not in self._orders:
                continue  # canceled meanwhile (a fill's consequences can cancel others)
            if resting.request.symbol != symbol:
                continue
            if only is not None and resting.request.client_order_id not in only:
                continue
            if arrived_on_bar is not None and resting.arrival_bar != arrived_on_bar:
                continue  # finalize: only orders sent after this bar was matched
            price, liquidity = self.fill_model.trigger(resting, bar)
            if price is None:
                if resting.request.tif is TimeInForce.IOC:
                    self._orders.remove(resting)
                    self._cancelled(resting, "expired", "IOC order could not fill on its bar")
                continue
            self._orders.remove(resting)
            self._execute(resting, price, liquidity)

    def _execute(self, resting: _RestingOrder, price: int, liquidity: Liquidity) -> None:
        request = resting.request
        symbol = request.symbol
        instrument = self.instruments[symbol]
        side = request.side
        if liquidity is Liquidity.TAKER:
            price = self.fill_model.adjust(price, side, instrument)
            limit = request.limit_price
            if limit is not None:  # a triggered stop-limit never fills beyond its limit
                price = min(price, limit) if side is Side.BUY else max(price, limit)
        commission = self._commission[symbol]
        book = self.accounts[request.account]
        position = book.positions[symbol]
        mark = self._marks.get(symbol, price)
        self._marks[symbol] = mark
        opposing = position * side < 0
        closable = abs(position) if opposing else 0

        if request.close_position or request.reduce_only:
            if not closable:
                self._cancelled(resting, "no_position", f"no {symbol} position to reduce")
                return
            quantity = closable if request.close_position else min(request.quantity, closable)
        elif request.equity_fraction is not None:
            available = self.margin_available(book.name)
            budget = available * self.leverage * parse_fraction(request.equity_fraction)
            quantity = floor((budget - commission.fixed) / commission.unit_cost(price))
            quantity -= quantity % instrument.size_increment
            if quantity <= 0:
                self._cancelled(
                    resting,
                    RejectReason.INSUFFICIENT_MARGIN.value,
                    f"margin available {self._money(instrument, available)} buys no unit"
                    f" at {to_decimal(price, instrument.price_precision)}",
                )
                return
        else:
            quantity = request.quantity

        opening = quantity - min(quantity, closable)
        if opening:
            # Margin after the closing leg, then the opening leg must fit in it.
            closing = quantity - opening
            saved_cash = book.cash
            book.cash -= side * closing * price * self._factors[symbol]
            book.positions[symbol] = position + side * closing
            available = self.margin_available(book.name) * self.leverage
            book.cash, book.positions[symbol] = saved_cash, position
            needed = opening * commission.unit_cost(price) + commission.fixed
            if needed > available:
                self._cancelled(
                    resting,
                    RejectReason.INSUFFICIENT_MARGIN.value,
                    f"needs {self._money(instrument, needed)} of margin,"
                    f" {self._money(instrument, available)} available",
                )
                return

        fee = commission.fee(price, quantity)
        book.cash -= side * quantity * price * self._factors[symbol] + fee
        book.positions[symbol] = position + side * quantity
        self._trade_seq += 1
        fill = VenueOrderFilled(
            ts=self._clock.now_ns(),
            client_order_id=request.client_order_id,
            venue_order_id=resting.venue_order_id,
            trade_id=f"T{self._trade_seq}",
            account=book.name,
            symbol=symbol,
            side=side,
            price=price,
            quantity=quantity,
            fee=fee,
            liquidity=liquidity,
            order_quantity=quantity,
            leaves_quantity=0,
        )
        # The venue's own record of every trade, queried by reconciliation and recovery.
        self.trade_log.append(fill)
        self._outcomes[fill.client_order_id] = fill  # bar mode: a fill completes the order
        self._report(fill)

    @staticmethod
    def _money(instrument: Instrument, amount: Fraction | int) -> str:
        value = to_decimal(int(amount), instrument.money_precision)
        return f"{value.quantize(Decimal(1).scaleb(-instrument.price_precision))}"

    def _cancelled(self, resting: _RestingOrder, reason: str, detail: str) -> None:
        canceled = VenueOrderCanceled(
            ts=self._clock.now_ns(),
            client_order_id=resting.request.client_order_id,
            venue_order_id=resting.venue_order_id,
            reason=reason,
            detail=detail,
        )
        self._outcomes[canceled.client_order_id] = canceled
        self._report(canceled)
