"""Order entry of the L2 paper exchange: what happens when a request reaches the venue.

:class:`OrderEntry` is the half of :class:`~predator.venue.l2_exchange.L2PaperExchange`
that admits or rejects a request (every reject carries a :class:`RejectReason`), takes
liquidity for the marketable part, rests the rest with a queue estimate, applies cancels
and amends, triggers stops, and books each fill into the venue's account. The exchange
adds the client API, time and the market-data side.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from math import floor

import msgspec

from predator.core.numbers import parse_fraction
from predator.market.instrument import Instrument
from predator.market.order_book import OrderBook
from predator.venue.dead_mans_switch import DeadMansSwitch
from predator.venue.l2_accounts import L2Accounts
from predator.venue.l2_matching import DepthView, Walk, book_side, walk
from predator.venue.l2_orders import (
    ClientRequest,
    L2Order,
    L2Rules,
    OrderStatus,
    RateLimiter,
    check_request,
    reference_price,
)
from predator.venue.latency import LatencyModel
from predator.venue.orders import (
    Liquidity,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueAmendRejected,
    VenueOrderAccepted,
    VenueOrderAmended,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
    VenueReport,
)
from predator.venue.queue_model import QueueModel, QueuePosition

__all__ = ["OrderEntry"]

_TAKING = (TimeInForce.IOC, TimeInForce.FOK)


class Refusal(Exception):
    """A request the venue refuses, with the reason it reports."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class OrderEntry:
    """Request handling at the venue; state lives on the exchange that inherits it."""

    instruments: dict[str, Instrument]
    queue_model: QueueModel
    latency: LatencyModel
    switch: DeadMansSwitch
    trade_log: list[VenueOrderFilled]
    halted: bool
    _ledger: L2Accounts
    _rules: dict[str, L2Rules]
    _rate: RateLimiter
    _books: dict[str, OrderBook]
    _views: dict[str, DepthView]
    _last_trade: dict[str, int]
    _orders: dict[str, L2Order]
    _open: dict[str, L2Order]
    _levels: dict[tuple[str, str, int], list[L2Order]]
    _known_ids: set[str]
    _outcomes: dict[str, VenueReport]
    _expiries: list[tuple[int, int, str]]
    _outbox: deque[tuple[int, VenueReport]]
    _last_delivery: int
    _seq: int
    _venue_order_seq: int
    _priority_seq: int
    _trade_seq: int
    _now: int

    # -- arrival -------------------------------------------------------------------------
    def _arrive(self, message: ClientRequest, now: int) -> None:
        """``message`` reaches the matching engine at ``now``."""
        if message.kind == "submit":
            assert message.order is not None
            self._arrive_submit(message.order)
        elif message.kind == "cancel":
            order = self._open.get(message.client_order_id)
            if order is not None:
                self._cancel(order, "canceled", message.reason)
        elif message.kind == "amend":
            self._arrive_amend(message.client_order_id, message.quantity, message.limit_price)
        else:
            self.switch.heartbeat(message.account, now=now, timeout_ns=message.timeout_ns)

    def _arrive_submit(self, request: OrderRequest) -> None:
        try:
            quantity, taking = self._admit(request)
        except Refusal as refusal:
            rejected = VenueOrderRejected(
                ts=self._now,
                client_order_id=request.client_order_id,
                reason=refusal.reason,
                detail=refusal.detail,
            )
            if refusal.reason is not RejectReason.DUPLICATE_ORDER_ID:
                self._outcomes[request.client_order_id] = rejected
            self._emit(rejected)
            return
        self._known_ids.add(request.client_order_id)
        self._venue_order_seq += 1
        order = L2Order(request, f"V{self._venue_order_seq}", quantity, self._now)
        self._orders[order.client_order_id] = order
        self._open[order.client_order_id] = order
        self._emit(
            VenueOrderAccepted(
                ts=self._now,
                client_order_id=request.client_order_id,
                venue_order_id=order.venue_order_id,
            )
        )
        if request.tif is TimeInForce.GTD:
            assert request.expire_at is not None
            self._seq += 1
            heapq.heappush(self._expiries, (request.expire_at, self._seq, order.client_order_id))
        if request.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            order.status = OrderStatus.WAITING_TRIGGER
            last = self._last_trade.get(request.symbol)
            if last is not None and self._stop_reached(order, last):
                self._trigger(order)
            return
        assert taking is not None
        self._execute(order, taking)

    def _admit(self, request: OrderRequest) -> tuple[int, Walk | None]:
        """Every entry check, in the order a venue applies them (a failed one raises
        :class:`Refusal`): the resolved quantity and, for market and limit orders, the
        walk of their marketable part."""
        now = self._now
        if self.halted:
            raise Refusal(RejectReason.VENUE_HALTED, "venue is halted")
        if request.client_order_id in self._known_ids:
            raise Refusal(RejectReason.DUPLICATE_ORDER_ID, request.client_order_id)
        rules = self._rules.get(request.symbol, L2Rules())
        reason, detail = check_request(request, self.instruments, self._ledger.accounts, rules, now)
        if reason is not None:
            raise Refusal(reason, detail)
        if not self._rate.allow(request.account, now, rules.max_requests, rules.rate_window_ns):
            raise Refusal(RejectReason.RATE_LIMIT_EXCEEDED, self._rate_detail(rules))
        symbol, side, kind = request.symbol, request.side, request.order_type
        limit = request.limit_price
        book, view = self._books[symbol], self._views[symbol]
        mid = book.mid()
        if not book.valid or mid is None:
            raise Refusal(RejectReason.NO_MARKET_DATA, book.invalid_reason or "a side is empty")
        for price in (request.limit_price, request.stop_price):
            band = rules.price_band_bps
            if price is not None and band is not None and abs(price - mid) * 10_000 > band * mid:
                detail = f"{price} beyond {band} bps of mid {round(mid)}"
                raise Refusal(RejectReason.OUTSIDE_PRICE_BAND, detail)
        closable = self._ledger.closable(request.account, symbol, side)
        if request.close_position and not closable:
            raise Refusal(RejectReason.NO_POSITION, f"no {symbol} position to close")
        if request.reduce_only and not closable:
            raise Refusal(RejectReason.REDUCE_ONLY_WOULD_INCREASE, f"no {symbol} position")
        if request.post_only and kind is OrderType.LIMIT and self._crosses(view, side, limit):
            raise Refusal(RejectReason.POST_ONLY_WOULD_CROSS, f"limit {request.limit_price}")
        others = [o for o in self._open.values() if o.request.account == request.account]
        power = self._ledger.buying_power(request.account, others)
        instrument = self.instruments[symbol]
        if request.close_position:
            quantity = closable
        elif request.equity_fraction is not None:
            budget = power * parse_fraction(request.equity_fraction)
            if kind is OrderType.MARKET:
                fixed = self._ledger.commission[symbol].fixed
                affordable = self._affordable(symbol, budget - fixed)
                step = instrument.size_increment
                quantity = walk(view, side, None, increment=step, affordable=affordable).quantity
            else:
                unit = self._ledger.unit_cost(symbol, reference_price(request))
                quantity = floor((budget - self._ledger.commission[symbol].fixed) / unit)
                quantity -= quantity % instrument.size_increment
            if quantity <= 0:
                detail = f"buying power {power} buys no unit"
                raise Refusal(RejectReason.INSUFFICIENT_MARGIN, detail)
        else:
            quantity = request.quantity
        taking = None
        if kind in (OrderType.MARKET, OrderType.LIMIT):
            taking = walk(view, side, quantity, limit=limit)
            if kind is OrderType.MARKET and not taking.quantity:
                raise Refusal(RejectReason.NO_MARKET_DATA, "no liquidity to take")
            if request.tif is TimeInForce.FOK and taking.quantity < quantity:
                detail = f"{taking.quantity} of {quantity} available"
                raise Refusal(RejectReason.FOK_CANNOT_FILL, detail)
        notional_price = limit or request.stop_price or mid
        if quantity * notional_price * instrument.notional_factor < rules.min_notional:
            raise Refusal(RejectReason.BELOW_MIN_NOTIONAL, f"{quantity} x {notional_price}")
        if not (request.reduce_only or request.close_position):
            legs = list(taking.legs) if taking is not None else []
            rests = kind is not OrderType.MARKET and request.tif not in _TAKING
            if kind is OrderType.STOP or rests:
                left = quantity - (taking.quantity if taking is not None else 0)
                legs.append((reference_price(request), left))
            already = sum(o.leaves for o in others if o.symbol == symbol and o.side is side)
            cost, _ = self._ledger.opening_cost(symbol, legs, max(0, closable - already), True)
            if cost > power:
                raise Refusal(RejectReason.INSUFFICIENT_MARGIN, f"needs {cost}, has {power}")
        return quantity, taking

    def _affordable(self, symbol: str, budget: Fraction | int) -> Callable[[int, int], int]:
        spent: list[Fraction | int] = [0]

        def affordable(price: int, wanted: int) -> int:
            unit = self._ledger.unit_cost(symbol, price)
            take = min(wanted, max(0, floor((budget - spent[0]) / unit)))
            spent[0] += take * unit
            return take

        return affordable

    @staticmethod
    def _rate_detail(rules: L2Rules) -> str:
        return f"more than {rules.max_requests} requests in {rules.rate_window_ns} ns"

    @staticmethod
    def _crosses(view: DepthView, side: Side, price: int | None) -> bool:
        if price is None:
            return False
        best = view.best("sell" if side is Side.BUY else "buy")
        if best is None:
            return False
        return best[0] <= price if side is Side.BUY else best[0] >= price

    # -- execution -----------------------------------------------------------------------
    def _execute(self, order: L2Order, taking: Walk) -> None:
        """Take the marketable part; rest, expire or (market) cancel what is left."""
        opposite = "sell" if order.side is Side.BUY else "buy"
        view = self._views[order.symbol]
        for price, quantity in taking.legs:
            done = self._fill(order, price, quantity, Liquidity.TAKER, self._now)
            view.consume(opposite, price, done)
            if done < quantity:
                break
        if not order.is_open or not order.leaves:
            return
        request = order.request
        if request.order_type in (OrderType.MARKET, OrderType.STOP) or request.tif in _TAKING:
            self._cancel(order, "expired", f"{order.leaves} left unfilled when it could not rest")
        else:
            self._rest(order)

    def _stop_reached(self, order: L2Order, trade_price: int) -> bool:
        stop = order.request.stop_price
        assert stop is not None
        return trade_price >= stop if order.side is Side.BUY else trade_price <= stop

    def _trigger_stops(self, symbol: str, trade_price: int) -> None:
        for order in list(self._open.values()):
            if (
                order.status is OrderStatus.WAITING_TRIGGER
                and order.symbol == symbol
                and self._stop_reached(order, trade_price)
            ):
                self._trigger(order)

    def _trigger(self, order: L2Order) -> None:
        """The stop traded: a stop becomes a market order, a stop-limit a limit order."""
        order.status = OrderStatus.RESTING
        request = order.request
        view = self._views[order.symbol]
        limit = request.limit_price if request.order_type is OrderType.STOP_LIMIT else None
        if request.post_only and self._crosses(view, order.side, limit):
            self._cancel(order, "post_only_would_cross", f"triggered limit {limit} would take")
            return
        taking = walk(view, order.side, order.leaves, limit=limit)
        if request.tif is TimeInForce.FOK and taking.quantity < order.leaves:
            self._cancel(order, "expired", f"FOK: {taking.quantity} of {order.leaves} available")
            return
        self._execute(order, taking)

    def _fill(
        self, order: L2Order, price: int, quantity: int, liquidity: Liquidity, ts: int
    ) -> int:
        """Fill up to ``quantity`` of ``order`` at ``price``; returns what filled."""
        quantity = min(quantity, order.leaves)
        if quantity <= 0 or not order.is_open:
            return 0
        account, symbol, side = order.request.account, order.symbol, order.side
        first = not order.first_fill_done
        if order.reduces_only:
            quantity = min(quantity, self._ledger.closable(account, symbol, side))
            if not quantity:
                self._cancel(order, "reduce_only", f"no {symbol} position left to reduce")
                return 0
        elif not self._ledger.affordable_at_fill(account, symbol, side, price, quantity, first):
            self._cancel(order, RejectReason.INSUFFICIENT_MARGIN.value, "margin gone at fill")
            return 0
        fee = self._ledger.book_fill(account, symbol, side, price, quantity, liquidity, first)
        order.first_fill_done = True
        order.filled += quantity
        self._trade_seq += 1
        fill = VenueOrderFilled(
            ts=ts,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            trade_id=f"T{self._trade_seq}",
            account=account,
            symbol=symbol,
            side=side,
            price=price,
            quantity=quantity,
            fee=fee,
            liquidity=liquidity,
            order_quantity=order.quantity,
            leaves_quantity=order.leaves,
        )
        self.trade_log.append(fill)
        if not order.leaves:
            order.status = OrderStatus.FILLED
            self._unrest(order)
            del self._open[order.client_order_id]
            self._outcomes[order.client_order_id] = fill
        self._emit(fill)
        self._sweep_reduce_only(account, symbol)
        return quantity

    def _sweep_reduce_only(self, account: str, symbol: str) -> None:
        """Reduce-only orders that can no longer reduce anything are cancelled."""
        for order in list(self._open.values()):
            if (
                order.reduces_only
                and order.request.account == account
                and order.symbol == symbol
                and not self._ledger.closable(account, symbol, order.side)
            ):
                self._cancel(order, "reduce_only", f"no {symbol} position left to reduce")

    # -- amend ---------------------------------------------------------------------------
    def _arrive_amend(self, client_order_id: str, quantity: int | None, price: int | None) -> None:
        order = self._open.get(client_order_id)
        reason, detail = self._check_amend(order, quantity, price)
        if reason is not None or order is None:
            self._emit(
                VenueAmendRejected(
                    ts=self._now,
                    client_order_id=client_order_id,
                    reason=reason or RejectReason.UNKNOWN_ORDER,
                    detail=detail,
                )
            )
            return
        new_quantity = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        repriced, grew = new_price != order.price, new_quantity > order.quantity
        resting = order.status is OrderStatus.RESTING
        if resting:
            self._unrest(order)
        order.quantity = new_quantity
        changes: dict[str, object] = {"limit_price": new_price}
        if order.request.quantity:
            changes["quantity"] = new_quantity
        order.request = msgspec.structs.replace(order.request, **changes)
        keep = not (repriced or grew)
        self._emit(
            VenueOrderAmended(
                ts=self._now,
                client_order_id=client_order_id,
                venue_order_id=order.venue_order_id,
                quantity=new_quantity,
                limit_price=new_price,
                leaves_quantity=order.leaves,
                kept_priority=keep,
            )
        )
        if resting and repriced:
            taking = walk(self._views[order.symbol], order.side, order.leaves, limit=new_price)
            self._execute(order, taking)
        elif resting:
            self._rest(order, keep_priority=keep)

    def _check_amend(
        self, order: L2Order | None, quantity: int | None, price: int | None
    ) -> tuple[RejectReason | None, str]:
        if order is None:
            return RejectReason.UNKNOWN_ORDER, "no such open order"
        if self.halted:
            return RejectReason.VENUE_HALTED, "venue is halted"
        rules = self._rules.get(order.symbol, L2Rules())
        if not self._rate.allow(
            order.request.account, self._now, rules.max_requests, rules.rate_window_ns
        ):
            return RejectReason.RATE_LIMIT_EXCEEDED, self._rate_detail(rules)
        instrument = self.instruments[order.symbol]
        if quantity is not None:
            if quantity % instrument.size_increment or quantity <= order.filled + order.canceled:
                return RejectReason.INVALID_SIZE, f"quantity {quantity} (filled {order.filled})"
            if quantity < rules.min_quantity:
                return RejectReason.BELOW_MIN_QUANTITY, f"{quantity} < {rules.min_quantity}"
        if price is not None and price != order.price:
            if order.price is None:
                return RejectReason.INVALID_PRICE, "only a limit price can be amended"
            if price <= 0:
                return RejectReason.INVALID_PRICE, f"limit price {price}"
            if price % instrument.price_increment:
                return RejectReason.OFF_TICK_SIZE, f"limit price {price}"
            book = self._books[order.symbol]
            mid = book.mid()
            if not book.valid or mid is None:
                return RejectReason.NO_MARKET_DATA, book.invalid_reason or "a side is empty"
            band = rules.price_band_bps
            if band is not None and abs(price - mid) * 10_000 > band * mid:
                return RejectReason.OUTSIDE_PRICE_BAND, f"{price} beyond {band} bps of mid"
            view = self._views[order.symbol]
            if order.request.post_only and self._crosses(view, order.side, price):
                return RejectReason.POST_ONLY_WOULD_CROSS, f"limit {price}"
        if not order.reduces_only:
            new_quantity = order.quantity if quantity is None else quantity
            new_leaves = new_quantity - order.filled - order.canceled
            at = order.price if price is None else price
            if new_leaves > order.leaves or at != order.price:
                others = [
                    o
                    for o in self._open.values()
                    if o is not order and o.request.account == order.request.account
                ]
                power = self._ledger.buying_power(order.request.account, others)
                leg = [(at if at is not None else reference_price(order.request), new_leaves)]
                cost, _ = self._ledger.opening_cost(order.symbol, leg, 0, not order.first_fill_done)
                if cost > power:
                    return RejectReason.INSUFFICIENT_MARGIN, f"needs {cost}, has {power}"
        return None, ""

    # -- the book of our resting orders --------------------------------------------------
    def _rest(self, order: L2Order, *, keep_priority: bool = False) -> None:
        """Put ``order`` at its price; a new place in line starts behind all displayed size."""
        assert order.price is not None
        side = book_side(order.side)
        if not keep_priority or order.queue is None:
            self._priority_seq += 1
            order.priority = self._priority_seq
            order.queue = QueuePosition(self._views[order.symbol].size_at(side, order.price))
        level = self._levels.setdefault((order.symbol, side, order.price), [])
        level.append(order)
        level.sort(key=lambda o: o.priority)
        order.status = OrderStatus.RESTING

    def _unrest(self, order: L2Order) -> None:
        if order.price is None:
            return
        key = (order.symbol, book_side(order.side), order.price)
        level = self._levels.get(key)
        if level is not None and order in level:
            level.remove(order)
            if not level:
                del self._levels[key]

    def _cancel(self, order: L2Order, reason: str, detail: str) -> None:
        self._unrest(order)
        self._open.pop(order.client_order_id, None)
        order.canceled += order.leaves
        order.status = OrderStatus.CANCELED
        canceled = VenueOrderCanceled(
            ts=self._now,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            reason=reason,
            detail=detail,
        )
        self._outcomes[order.client_order_id] = canceled
        self._emit(canceled)

    def _emit(self, report: VenueReport) -> None:
        """Queue ``report`` for the client after the response latency, in order."""
        deliver = max(report.ts + self.latency.response_ns(report.ts), self._last_delivery)
        self._last_delivery = deliver
        self._outbox.append((deliver, report))
