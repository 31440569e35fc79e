"""The paper exchange in L2 mode: our orders matched against a replayed real order book.

Driven by market-data events (:mod:`predator.market.l2`) instead of bars: market orders
walk the book (VWAP across levels), limit orders rest with a queue-position estimate
(:mod:`predator.venue.queue_model`) and fill when trades at their price consume the
queue ahead, or when the market trades or quotes through them. Requests and reports
travel with latency (:mod:`predator.venue.latency`); a dead-man's switch cancels the
orders of a silent client. The client API is the bar-mode PaperExchange's, plus
:meth:`L2PaperExchange.amend` and :meth:`L2PaperExchange.heartbeat`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

from predator.core.clock import Clock
from predator.market.book_sync import SPOT, USDM, BookSync
from predator.market.instrument import Instrument
from predator.market.l2 import BookDelta, BookSnapshot, QuoteTick, TradeTick
from predator.market.order_book import OrderBook
from predator.venue.dead_mans_switch import DeadMansSwitch
from predator.venue.fees import CommissionModel
from predator.venue.l2_accounts import L2Accounts
from predator.venue.l2_entry import OrderEntry
from predator.venue.l2_matching import DepthView
from predator.venue.l2_orders import ClientRequest, L2Order, L2Rules, OrderState, RateLimiter
from predator.venue.latency import LatencyModel
from predator.venue.orders import Liquidity, OrderRequest, VenueOrderFilled, VenueReport
from predator.venue.paper_exchange import VenueAccount, VenueTransfer
from predator.venue.queue_model import QueueModel, RiskAverseQueue

__all__ = ["L2PaperExchange", "MarketData"]

ReportSink = Callable[[VenueReport], None]
MarketData = BookSnapshot | BookDelta | QuoteTick | TradeTick
"""The events the L2 exchange is driven by."""

_BUFFER = 1_000  # deltas kept while a book waits for its snapshot


class L2PaperExchange(OrderEntry):
    """A simulated venue matching our orders against replayed L2 books, exactly.

    Construct it like the bar-mode PaperExchange (``clock``, ``instruments``, ``cash``
    of the ``main`` account, ``commission``, ``leverage``, ``report`` sink), plus:

    * ``queue_model``: how cancels move our queue place (default :class:`RiskAverseQueue`);
    * ``latency``: order-entry / response / market-data delays (default none);
    * ``rules``: entry filters, one :class:`L2Rules` or one per symbol (default none).

    Feed it market data in time order with :meth:`on_market_data` (or ``on_snapshot``,
    ``on_delta``, ``on_trade``, ``on_quote``); :meth:`advance_to` lets time pass without
    data (delayed reports, GTD expiries, the dead-man's switch). Times are kernel ns:
    an event's ``ts`` is when the venue matches on it; a request reaches the venue at
    ``clock.now_ns()`` plus the entry latency; a report reaches the sink its response
    latency after its own ``ts`` (reports keep their order).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        instruments: Iterable[Instrument],
        cash: int,
        commission: CommissionModel | Mapping[str, CommissionModel],
        leverage: Decimal | int = 1,
        queue_model: QueueModel | None = None,
        latency: LatencyModel | None = None,
        rules: L2Rules | Mapping[str, L2Rules] | None = None,
        report: ReportSink | None = None,
    ) -> None:
        self._clock = clock
        self.instruments = {i.symbol: i for i in instruments}
        if not self.instruments:
            raise ValueError("an L2PaperExchange needs at least one instrument")
        commissions = (
            dict(commission)
            if isinstance(commission, Mapping)
            else dict.fromkeys(self.instruments, commission)
        )
        self.leverage = Fraction(Decimal(leverage))
        if self.leverage <= 0:
            raise ValueError(f"leverage must be > 0, got {leverage}")
        self._ledger = L2Accounts(self.instruments, commissions, self.leverage)
        self._ledger.open("main", cash, self.instruments)
        self.queue_model: QueueModel = queue_model or RiskAverseQueue()
        self.latency = latency or LatencyModel.zero()
        default_rules = rules if isinstance(rules, L2Rules) else L2Rules()
        self._rules = {
            s: (rules.get(s, default_rules) if isinstance(rules, Mapping) else default_rules)
            for s in self.instruments
        }
        self._rate = RateLimiter()
        self._books = {s: OrderBook(s) for s in self.instruments}
        self._views = {s: DepthView(book) for s, book in self._books.items()}
        self._syncs = {s: BookSync(book, SPOT) for s, book in self._books.items()}
        self._buffered: dict[str, deque[BookDelta]] = {
            s: deque(maxlen=_BUFFER) for s in self.instruments
        }
        self._last_trade: dict[str, int] = {}
        self._orders: dict[str, L2Order] = {}
        self._open: dict[str, L2Order] = {}
        self._levels: dict[tuple[str, str, int], list[L2Order]] = {}
        self._known_ids: set[str] = set()
        self._outcomes: dict[str, VenueReport] = {}
        self._pending: list[tuple[int, int, ClientRequest]] = []
        self._expiries: list[tuple[int, int, str]] = []
        self._outbox: deque[tuple[int, VenueReport]] = deque()
        self._last_delivery = 0
        self._last_arrival = 0
        self._seq = 0
        self._venue_order_seq = 0
        self._priority_seq = 0
        self._trade_seq = 0
        self._now = clock.now_ns()
        self._busy = False
        self.switch = DeadMansSwitch()
        self.transfer_log: list[VenueTransfer] = []
        """Every transfer between sub-accounts (``transfer_log[n - 1]`` is ``X<n>``)."""
        self.trade_log: list[VenueOrderFilled] = []
        """Every fill this venue reported, in trade order (``trade_log[n - 1]`` is ``T<n>``)."""
        self.halted = False
        self._report: ReportSink = report or (lambda _report: None)

    # -- accounts (as the bar-mode PaperExchange) ----------------------------------------
    def open_account(self, name: str, cash: int) -> VenueAccount:
        """Create the sub-account ``name`` funded with ``cash`` money units."""
        return self._ledger.open(name, cash, self.instruments)

    @property
    def accounts(self) -> dict[str, VenueAccount]:
        return self._ledger.accounts

    @property
    def cash(self) -> int:
        """Cash of the ``main`` account."""
        return self._ledger.accounts["main"].cash

    @property
    def positions(self) -> dict[str, int]:
        """Positions of the ``main`` account."""
        return self._ledger.accounts["main"].positions

    def account_snapshot(self, account: str = "main") -> tuple[int, dict[str, int]]:
        """``(cash, positions)`` of ``account`` as the venue holds them (copies)."""
        book = self._ledger.accounts[account]
        return book.cash, dict(book.positions)

    def equity(self, account: str = "main") -> int:
        """Cash plus open positions at their marks, in money units."""
        return self._ledger.equity(account)

    def margin_available(self, account: str = "main") -> Fraction | int:
        """Equity not tied up as margin by open positions (never negative)."""
        return self._ledger.margin_available(account)

    def transferable(self, account: str) -> int:
        """Money units ``account`` may transfer out now (free of positions and orders)."""
        return self._ledger.transferable(account, self._open.values())

    def transfer(self, from_account: str, to_account: str, amount: int) -> VenueTransfer:
        """Move free cash between sub-accounts, as the bar-mode venue's ``transfer``."""
        self._ledger.transfer(
            from_account, to_account, amount, self._open.values(), halted=self.halted
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

    def mark(self, symbol: str) -> int | None:
        """The venue's mark of ``symbol``: the book's mid, rounded half-even to a price unit."""
        return self._ledger.marks.get(symbol)

    # -- wiring --------------------------------------------------------------------------
    def use_clock(self, clock: Clock) -> None:
        """Read time from ``clock`` from now on (a restarted node's simulation clock)."""
        self._clock = clock

    def connect(self, report: ReportSink) -> None:
        """Send every report to ``report`` (the venue client)."""
        self._report = report

    # -- client API ----------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> None:
        """Send ``request``; it reaches the venue after the entry latency, which accepts
        (and maybe fills) or rejects it there."""
        self._send(ClientRequest(kind="submit", order=request))

    def cancel(self, client_order_id: str, reason: str = "canceled by client") -> bool:
        """Send a cancel; False when the order is not open (nor on its way) right now.

        With latency the cancel can still lose the race against a fill; then it does
        nothing, as on a real venue.
        """
        known = client_order_id in self._open or self._in_flight(client_order_id)
        self._send(ClientRequest(kind="cancel", client_order_id=client_order_id, reason=reason))
        return known

    def amend(
        self,
        client_order_id: str,
        *,
        quantity: int | None = None,
        limit_price: int | None = None,
    ) -> bool:
        """Send an amend of an open order's total ``quantity`` and/or ``limit_price``.

        A smaller quantity at the same price keeps the order's queue place; a new price
        or a larger quantity sends it to the back. The venue answers
        :class:`~predator.venue.orders.VenueOrderAmended` or
        :class:`~predator.venue.orders.VenueAmendRejected`. False when the order is not
        open (nor on its way) right now.
        """
        known = client_order_id in self._open or self._in_flight(client_order_id)
        self._send(
            ClientRequest(
                kind="amend",
                client_order_id=client_order_id,
                quantity=quantity,
                limit_price=limit_price,
            )
        )
        return known

    def heartbeat(self, account: str = "main", timeout_ns: int | None = None) -> None:
        """Tell the venue ``account``'s client is alive; ``timeout_ns`` arms (or, 0,
        disarms) the dead-man's switch: without a heartbeat for that long, the venue
        cancels all of the account's orders."""
        self._send(ClientRequest(kind="heartbeat", account=account, timeout_ns=timeout_ns))

    def open_orders(self) -> list[OrderRequest]:
        """Requests still open at the venue (as amended), in arrival order."""
        return [order.request for order in self._open.values()]

    def order_state(self, client_order_id: str) -> OrderState | None:
        """The venue's view of an accepted order (``None`` if it never accepted it)."""
        order = self._orders.get(client_order_id)
        return None if order is None else order.state()

    def order_states(self) -> list[OrderState]:
        """Every accepted order's state, in arrival order."""
        return [order.state() for order in self._orders.values()]

    def fills_since(self, trade_seq: int) -> list[VenueOrderFilled]:
        """The fills after venue trade sequence ``trade_seq`` (0: all), in trade order."""
        if trade_seq < 0:
            raise ValueError(f"trade_seq must be >= 0, got {trade_seq}")
        return self.trade_log[trade_seq:]

    @property
    def trade_seq(self) -> int:
        """Sequence number of the last trade (0 before the first)."""
        return self._trade_seq

    def knows_order(self, client_order_id: str) -> bool:
        """Whether this venue received ``client_order_id`` or has it on its way (an
        order in flight is not "unknown": it has not arrived yet)."""
        return (
            client_order_id in self._known_ids
            or client_order_id in self._outcomes
            or self._in_flight(client_order_id)
        )

    def order_outcome(self, client_order_id: str) -> VenueReport | None:
        """The venue's final answer on an order (rejected, canceled or fully filled)."""
        return self._outcomes.get(client_order_id)

    @property
    def now(self) -> int:
        """Venue time: the latest event, arrival or delivery it has processed (ns)."""
        return self._now

    def book(self, symbol: str) -> OrderBook:
        """The venue's replayed book of ``symbol`` (read it, never write it)."""
        return self._books[symbol]

    def finalize(self, only: Iterable[str] | None = None) -> None:
        """End of data: every request on its way arrives and every report is delivered
        (``only`` is accepted for the bar-mode signature; L2 mode has no extra pass)."""
        while self._pending or self._outbox:
            horizon = max(
                [self._now]
                + [arrival for arrival, _, _ in self._pending]
                + [deliver for deliver, _ in self._outbox]
            )
            self.advance_to(horizon)

    # -- market data ---------------------------------------------------------------------
    def on_market_data(self, event: MarketData) -> None:
        """Match on one market-data event (dispatch by type)."""
        if isinstance(event, TradeTick):
            self.on_trade(event)
        elif isinstance(event, BookDelta):
            self.on_delta(event)
        elif isinstance(event, QuoteTick):
            self.on_quote(event)
        elif isinstance(event, BookSnapshot):
            self.on_snapshot(event)
        else:
            raise TypeError(f"the L2 exchange is not driven by {type(event).__name__}")

    def advance_to(self, ts: int) -> None:
        """Let venue time reach ``ts``: requests arrive, GTD orders expire, the dead-man's
        switch fires, delayed reports are delivered."""
        self._run(ts)

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        """Replace the book of ``snapshot.symbol``; resting queues are re-estimated.

        Deltas received while the book had no snapshot are replayed on top of it when
        they continue it (Binance's sync procedure: the snapshot may arrive after the
        first deltas that follow it).
        """
        symbol = snapshot.symbol
        if self._skip(symbol, snapshot.ts):
            return
        book, view = self._books[symbol], self._views[symbol]
        before = self._resting_level_sizes(symbol)
        self._syncs[symbol].apply_snapshot(snapshot)
        view.reset()
        for (side, price), size in before.items():
            self._level_changed(symbol, side, price, size)
        buffered, self._buffered[symbol] = list(self._buffered[symbol]), deque(maxlen=_BUFFER)
        for delta in buffered:
            if delta.last_update_id > book.last_update_id:
                self._apply_delta(delta)
        self._after_book_change(symbol, snapshot.ts)

    def on_delta(self, delta: BookDelta) -> None:
        """Apply a depth update (Binance sync rules; a gap invalidates the book until
        the next snapshot, and deltas are kept meanwhile)."""
        symbol = delta.symbol
        if self._skip(symbol, delta.ts):
            return
        if self._apply_delta(delta):
            self._after_book_change(symbol, delta.ts)
        else:
            self._flush()

    def _apply_delta(self, delta: BookDelta) -> bool:
        symbol = delta.symbol
        book = self._books[symbol]
        sync = self._syncs[symbol]
        if delta.prev_update_id >= 0:
            sync.market = USDM  # only USD-M diffs carry ``pu``
        if not book.valid:
            self._buffered[symbol].append(delta)
            return False
        touched = [
            (side, price, book.size_at(side, price))
            for side, levels in (("buy", delta.bids), ("sell", delta.asks))
            for price, _ in levels
            if (symbol, side, price) in self._levels
        ]
        if not sync.apply_delta(delta):  # already in the book, or a gap
            if not book.valid:
                self._buffered[symbol].append(delta)
            return False
        view = self._views[symbol]
        for side, levels in (("buy", delta.bids), ("sell", delta.asks)):
            for price, _ in levels:
                view.refreshed(side, price)  # the venue restated it: our taking is history
        for side, price, size in touched:
            self._level_changed(symbol, side, price, size)
        return True

    def on_quote(self, quote: QuoteTick) -> None:
        """A best bid/ask from the venue: resting orders it trades through fill."""
        symbol = quote.symbol
        if self._skip(symbol, quote.ts):
            return
        book, view = self._books[symbol], self._views[symbol]
        if book.valid and quote.update_id >= book.last_update_id:
            # The quote is newer than the book; our own taking still counts against it.
            ask = quote.ask_size - view.consumed.get(("sell", quote.ask_price), 0)
            bid = quote.bid_size - view.consumed.get(("buy", quote.bid_price), 0)
            self._cross(symbol, quote.ts, quote.bid_price if bid > 0 else None, None)
            self._cross(symbol, quote.ts, None, quote.ask_price if ask > 0 else None)
        self._flush()

    def on_trade(self, trade: TradeTick) -> None:
        """A trade on the venue: it consumes queues at its price, trades through better
        prices, and triggers stops."""
        symbol = trade.symbol
        if self._skip(symbol, trade.ts):
            return
        self._last_trade[symbol] = trade.price
        if self._books[symbol].valid:
            self._trigger_stops(symbol, trade.price)
            self._match_trade(trade)
        self._flush()

    # -- time ----------------------------------------------------------------------------
    def _send(self, message: ClientRequest) -> None:
        sent = self._clock.now_ns()
        self._seq += 1
        # One connection: requests arrive in the order they were sent, whatever the jitter.
        arrival = max(sent + self.latency.entry_ns(sent), self._last_arrival)
        self._last_arrival = arrival
        heapq.heappush(self._pending, (arrival, self._seq, message))
        if not self._busy:
            self._run(max(sent, self._now))

    def _in_flight(self, client_order_id: str) -> bool:
        return any(
            message.order is not None and message.order.client_order_id == client_order_id
            for _, _, message in self._pending
        )

    def _skip(self, symbol: str, ts: int) -> bool:
        """Run the venue up to ``ts``; True when ``symbol`` is not traded here."""
        if symbol not in self._books:
            return True
        self._run(ts, flush=False)
        return False

    def _run(self, until: int, *, flush: bool = True) -> None:
        """Process everything timed at or before ``until`` in time order."""
        if self._busy:
            return
        self._busy = True
        try:
            while True:
                step = self._next_step()
                if step is None or step > until:
                    break
                self._now = max(self._now, step)
                self._do_step(step)
            self._now = max(self._now, until)
        finally:
            self._busy = False
        if flush:
            self._flush()

    def _next_step(self) -> int | None:
        times = []
        if self._pending:
            times.append(self._pending[0][0])
        if self._expiries:
            times.append(self._expiries[0][0])
        if self._outbox:
            times.append(self._outbox[0][0])
        deadline = self.switch.next_deadline()
        if deadline is not None:
            times.append(deadline)
        return min(times, default=None)

    def _do_step(self, step: int) -> None:
        if self._outbox and self._outbox[0][0] == step:
            self._report(self._outbox.popleft()[1])
            return
        deadline = self.switch.next_deadline()
        if deadline == step:
            for account in self.switch.expired(now=step):
                for victim in [o for o in self._open.values() if o.request.account == account]:
                    self._cancel(victim, "dead_mans_switch", "no heartbeat within the timeout")
            return
        if self._expiries and self._expiries[0][0] == step:
            _, _, client_order_id = heapq.heappop(self._expiries)
            order = self._open.get(client_order_id)
            if order is not None:
                self._cancel(order, "expired", "GTD order reached its expiry time")
            return
        _, _, message = heapq.heappop(self._pending)
        self._arrive(message, step)

    def _flush(self) -> None:
        """Deliver every report due by now (in order)."""
        if self._busy:
            return
        self._run(self._now, flush=False)

    # -- market matching -----------------------------------------------------------------
    def _resting_level_sizes(self, symbol: str) -> dict[tuple[str, int], int]:
        book = self._books[symbol]
        return {
            (side, price): book.size_at(side, price)
            for (sym, side, price) in self._levels
            if sym == symbol
        }

    def _level_changed(self, symbol: str, side: str, price: int, before: int) -> None:
        after = self._books[symbol].size_at(side, price)
        for order in self._levels.get((symbol, side, price), ()):
            assert order.queue is not None
            self.queue_model.on_level_change(order.queue, before, after)

    def _after_book_change(self, symbol: str, ts: int) -> None:
        book = self._books[symbol]
        mid = book.mid()
        if mid is not None:
            self._ledger.marks[symbol] = round(mid)
        if book.valid:
            view = self._views[symbol]
            bid, ask = view.best("buy"), view.best("sell")
            self._cross(symbol, ts, None if bid is None else bid[0], None)
            self._cross(symbol, ts, None, None if ask is None else ask[0])
        self._flush()

    def _cross(self, symbol: str, ts: int, best_bid: int | None, best_ask: int | None) -> None:
        """Fill in full every resting order the opposite best has reached."""
        for (sym, side, price), orders in list(self._levels.items()):
            if sym != symbol:
                continue
            crossed = (
                best_ask is not None and price >= best_ask
                if side == "buy"
                else best_bid is not None and price <= best_bid
            )
            if crossed:
                for order in list(orders):
                    self._fill(order, price, order.leaves, Liquidity.MAKER, ts)

    def _match_trade(self, trade: TradeTick) -> None:
        symbol, price = trade.symbol, trade.price
        for (sym, side, level), orders in list(self._levels.items()):
            if sym != symbol:
                continue
            through = level > price if side == "buy" else level < price
            if through:
                for order in list(orders):
                    self._fill(order, level, order.leaves, Liquidity.MAKER, trade.ts)
            elif level == price and trade.aggressor != side:
                volume = trade.size
                for order in list(orders):
                    assert order.queue is not None
                    excess = self.queue_model.on_trade(order.queue, volume)
                    take = min(excess, order.leaves)
                    if take:
                        self._fill(order, level, take, Liquidity.MAKER, trade.ts)
                    volume -= take  # what we took never reaches the orders behind us
