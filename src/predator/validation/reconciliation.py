"""Reconciliation: execution vs portfolio vs venue, corrected when provable, else HALT.

Every ``interval_ns`` of kernel time it compares the venue's trades, accounts and resting
orders with what execution and the portfolios believe. A venue fill we lack for an order
we sent is a provable desync: it is journaled (``FillRecovered``) and re-delivered once
(execution dedups by trade id); so is a venue transfer between our pools that the books
lack (applied and journaled as ``CapitalTransferred`` by reconciliation). A fill we applied
that the venue's trade log lacks is provably false: journaled as ``FillReversed`` and undone
exactly. Anything else trips the global kill switch; our state is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

import msgspec

from predator.core.bus import MessageBus
from predator.core.clock import NS_PER_SECOND, Clock
from predator.core.events import Event
from predator.execution.execution_engine import ExecutionEngine
from predator.execution.order import FillReversed, OrderFilled, OrderStatus
from predator.portfolio.portfolio import Portfolio
from predator.portfolio.transfers import CapitalTransferred, CapitalTransfers
from predator.risk.emergency_stop import EmergencyStop, KillScope, KillTrigger
from predator.venue.orders import (
    Liquidity,
    RejectReason,
    Side,
    VenueOrderCanceled,
    VenueOrderFilled,
    VenueOrderRejected,
)
from predator.venue.paper_exchange import PaperExchange

__all__ = [
    "DEFAULT_INTERVAL_NS",
    "Discrepancy",
    "FillRecovered",
    "OrderOutcomeRecovered",
    "Reconciliation",
    "ReconciliationCompleted",
    "ReconciliationMismatch",
    "ReconciliationReport",
]

DEFAULT_INTERVAL_NS = 60 * NS_PER_SECOND
"""Kernel time between two checks: a lost fill is found within one minute."""


class Discrepancy(msgspec.Struct, frozen=True, kw_only=True):
    """One difference reconciliation cannot explain.

    ``kind`` names the check (``unknown_order_fill``, ``cash``, ``position``,
    ``open_order_missing_at_venue`` ...); ``subject`` what it is about (an account, a
    client order id, a trade id); ``ours`` and ``venue`` the two values as text.
    """

    kind: str
    subject: str
    ours: str
    venue: str
    detail: str = ""


class OrderOutcomeRecovered(Event, frozen=True, kw_only=True):
    """The venue's final answer on an order (cancel, expiry, rejection) that we had lost,
    re-delivered once: the journaled correction before the order event it causes."""

    client_order_id: str
    outcome: str
    reason: str


class FillRecovered(Event, frozen=True, kw_only=True):
    """A venue fill we had not applied, recovered from the venue's trade log.

    The journaled correction: it precedes the ``OrderFilled`` its re-delivery causes.
    """

    trade_id: str
    client_order_id: str
    venue_order_id: str
    account: str
    symbol: str
    side: Side
    price: int
    quantity: int
    fee: int
    liquidity: Liquidity
    leaves_quantity: int
    fill_ts: int
    """When the venue filled it (``ts`` is when we recovered it)."""
    reason: str


class ReconciliationMismatch(Event, frozen=True, kw_only=True):
    """Differences with no provable cause: the node halts (global kill switch)."""

    discrepancies: tuple[Discrepancy, ...]


class ReconciliationCompleted(Event, frozen=True, kw_only=True):
    """One reconciliation check ran; counts of what it compared and found.

    Not journaled: a clean check changes nothing (corrections and mismatches are
    journaled as their own events); it still travels on the bus for dashboards.
    """

    journaled: ClassVar[bool] = False

    venue_trade_seq: int
    fills_checked: int
    accounts_checked: int
    open_orders_checked: int
    corrections: int
    mismatches: int


class ReconciliationReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one :meth:`Reconciliation.check` found and did."""

    checked_at: int
    corrections: tuple[FillRecovered, ...] = ()
    mismatches: tuple[Discrepancy, ...] = ()
    reversals: tuple[FillReversed, ...] = ()

    @property
    def clean(self) -> bool:
        """True when nothing needed correcting and nothing was unexplained."""
        return not self.corrections and not self.mismatches and not self.reversals


class Reconciliation:
    """Compares execution, portfolios and the venue; corrects provable desyncs or halts.

    ``portfolios`` maps a pool name to its :class:`Portfolio`; each portfolio is compared
    with the venue sub-account it names (``portfolio.account``).

    >>> recon = Reconciliation(bus, clock, exchange, execution, portfolios, kill_switch)
    ... # doctest: +SKIP
    >>> recon.maybe_check(clock.now_ns())  # on every bar; checks once per interval
    ... # doctest: +SKIP
    """

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        exchange: PaperExchange,
        execution: ExecutionEngine,
        portfolios: Mapping[str, Portfolio],
        kill_switch: EmergencyStop,
        *,
        interval_ns: int = DEFAULT_INTERVAL_NS,
        actor: str = "reconciliation",
    ) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be > 0, got {interval_ns}")
        self._bus = bus
        self._clock = clock
        self._exchange = exchange
        self._execution = execution
        self._portfolios = portfolios
        self._kill_switch = kill_switch
        self.interval_ns = interval_ns
        self.actor = actor
        self.venue_trade_seq = 0
        self._unapplied: list[tuple[FillRecovered, VenueOrderFilled]] = []
        """Recoveries whose re-delivered fill did not reach execution: retried each check."""
        """Venue trades checked so far (the next check asks for fills since it)."""
        self.next_check_ts: int | None = None
        self.checks = 0
        self.outcomes_recovered = 0
        self.corrections: list[FillRecovered] = []
        self.reversals: list[FillReversed] = []
        self.mismatches: list[Discrepancy] = []
        self._venue_trade_ids: set[str] = set()
        self._applied_unchecked: list[OrderFilled] = []
        bus.subscribe(OrderFilled, self._applied_unchecked.append)
        self.venue_transfer_seq = 0
        """Venue transfers checked so far."""
        self.transfers_recovered: list[CapitalTransferred] = []
        self._applied_transfers: set[str] = set()
        bus.subscribe(CapitalTransferred, self._on_transfer)

    def resume_from(
        self,
        venue_trade_seq: int,
        applied_trade_ids: Iterable[str],
        applied_transfer_ids: Iterable[str] = (),
    ) -> None:
        """After a restart: venue trades up to ``venue_trade_seq`` are accounted for, and
        ``applied_trade_ids`` (from the journal) are known venue trades;
        ``applied_transfer_ids`` the capital transfers the journal holds."""
        self.venue_trade_seq = venue_trade_seq
        self._venue_trade_ids.update(applied_trade_ids)
        self._applied_transfers.update(applied_transfer_ids)

    def verify_applied(self, fills: Iterable[OrderFilled]) -> None:
        """Check these applied fills against the venue's trades at the next check (after
        a restart rebuilt them without publishing them)."""
        self._applied_unchecked.extend(fills)

    def _on_transfer(self, event: CapitalTransferred) -> None:
        self._applied_transfers.add(event.transfer_id)

    # -- scheduling ---------------------------------------------------------------------
    def maybe_check(self, now: int) -> ReconciliationReport | None:
        """Run :meth:`check` when a full interval has passed since the last one.

        The first call only starts the interval. Returns the report, or ``None``.
        """
        due = self.next_check_ts
        if due is None:
            self.next_check_ts = now + self.interval_ns
            return None
        if now < due:
            return None
        self.next_check_ts = now + self.interval_ns
        return self.check()

    # -- the check ----------------------------------------------------------------------
    def check(self) -> ReconciliationReport:
        """Compare fills, then balances and positions, then open orders; act on the result.

        Corrections come first so the balance and order checks see the corrected state.
        Publishes ``FillReversed`` per fill the venue never made, ``FillRecovered`` per
        lost fill, one ``ReconciliationMismatch`` (and a
        global kill-switch trip) when anything is unexplained, and ``ReconciliationCompleted``.
        """
        now = self._clock.now_ns()
        self.checks += 1
        mismatches: list[Discrepancy] = []
        new_fills = self._exchange.fills_since(self.venue_trade_seq)
        self._venue_trade_ids.update(fill.trade_id for fill in new_fills)
        # False fills first: a ghost may block the venue's real fill of its order (it
        # would overfill it), which the fill check then recovers.
        reversals = self._check_applied(mismatches, now)
        corrections = self._check_fills(new_fills, now, mismatches)
        self._check_transfers(mismatches)
        accounts = self._check_accounts(mismatches)
        open_orders = self._check_open_orders(mismatches, now)
        report = ReconciliationReport(
            checked_at=now,
            corrections=tuple(corrections),
            mismatches=tuple(mismatches),
            reversals=tuple(reversals),
        )
        if not mismatches:
            # The books agree with the venue: fills from here on are reversible exactly.
            for portfolio in self._portfolios.values():
                portfolio.checkpoint()
        self.mismatches.extend(mismatches)
        if mismatches:
            self._bus.publish(ReconciliationMismatch(ts=now, discrepancies=tuple(mismatches)))
            self._kill_switch.trip(
                KillScope.GLOBAL,
                _halt_reason(mismatches),
                actor=self.actor,
                trigger=KillTrigger.RECONCILIATION_MISMATCH,
            )
        self._bus.publish(
            ReconciliationCompleted(
                ts=now,
                venue_trade_seq=self.venue_trade_seq,
                fills_checked=len(new_fills),
                accounts_checked=accounts,
                open_orders_checked=open_orders,
                corrections=len(corrections) + len(reversals),
                mismatches=len(mismatches),
            )
        )
        return report

    def _check_fills(
        self, fills: list[VenueOrderFilled], now: int, mismatches: list[Discrepancy]
    ) -> list[FillRecovered]:
        """Venue fills vs fills execution applied; recover the provably lost ones."""
        orders = self._execution.orders
        corrections: list[FillRecovered] = []
        retry, self._unapplied = self._unapplied, []
        for correction, fill in retry:
            order = orders.get(fill.client_order_id)
            if order is not None and order.is_open and fill.trade_id not in order.trade_ids:
                self._bus.publish(fill)  # the correction is journaled already
            if order is not None and fill.trade_id in order.trade_ids:
                corrections.append(correction)
                self.corrections.append(correction)
            else:
                mismatches.append(self._not_applied(correction, fill, "still "))
        for fill in fills:
            self.venue_trade_seq += 1
            self._venue_trade_ids.add(fill.trade_id)
            order = orders.get(fill.client_order_id)
            if order is None:
                mismatches.append(
                    Discrepancy(
                        kind="unknown_order_fill",
                        subject=fill.trade_id,
                        ours="no such order",
                        venue=f"{fill.client_order_id} {fill.side.name} {fill.quantity}",
                        detail="the venue filled an order we never sent",
                    )
                )
                continue
            if fill.trade_id in order.trade_ids:
                continue
            request = order.request
            ours = (request.symbol, request.account, request.side)
            if ours != (fill.symbol, fill.account, fill.side) or not order.is_open:
                # Not provable: the fill contradicts our order, or the order is closed
                # here (re-applying it would break its state machine).
                mismatches.append(
                    Discrepancy(
                        kind="fill_contradicts_order",
                        subject=fill.trade_id,
                        ours=f"{order.client_order_id} {order.status.value} "
                        f"{request.symbol} {request.account} {request.side.name}",
                        venue=f"{fill.symbol} {fill.account} {fill.side.name}",
                        detail="a venue fill we lack that does not fit its order",
                    )
                )
                continue
            correction = FillRecovered(
                ts=now,
                trade_id=fill.trade_id,
                client_order_id=fill.client_order_id,
                venue_order_id=fill.venue_order_id,
                account=fill.account,
                symbol=fill.symbol,
                side=fill.side,
                price=fill.price,
                quantity=fill.quantity,
                fee=fill.fee,
                liquidity=fill.liquidity,
                leaves_quantity=fill.leaves_quantity,
                fill_ts=fill.ts,
                reason="venue trade log has a fill execution never applied",
            )
            # Journal the cause first, then re-deliver the venue's own report: execution
            # dedups by trade id, so a late original or a second check cannot apply it twice.
            self._bus.publish(correction)
            self._bus.publish(fill)
            if fill.trade_id not in order.trade_ids:
                mismatches.append(self._not_applied(correction, fill, ""))
                continue
            corrections.append(correction)
            self.corrections.append(correction)
        return corrections

    def _not_applied(
        self, correction: FillRecovered, fill: VenueOrderFilled, still: str
    ) -> Discrepancy:
        """A recovery whose re-delivered fill did not reach execution: kept for a retry at
        the next check, and a mismatch meanwhile (the node halts)."""
        self._unapplied.append((correction, fill))
        return Discrepancy(
            kind="recovery_not_applied",
            subject=fill.trade_id,
            ours="not applied",
            venue="filled",
            detail=f"the re-delivered fill {still}did not reach execution",
        )

    def _check_applied(self, mismatches: list[Discrepancy], now: int) -> list[FillReversed]:
        """Every fill execution applied must be a trade the venue reported.

        The venue is the authority on its trades: a fill it never made is provably false
        and, when its pool applied it since its last checkpoint, reversed exactly
        (``FillReversed``, journaled). Otherwise it is a mismatch (the node halts).
        """
        applied = list(self._applied_unchecked)
        self._applied_unchecked.clear()  # in place: the bus holds its bound append
        known = self._venue_trade_ids
        trade_log = getattr(self._exchange, "trade_log", None)
        reversals: list[FillReversed] = []
        for fill in applied:
            if fill.trade_id in known:
                continue
            if trade_log is not None and any(t.trade_id == fill.trade_id for t in trade_log):
                known.add(fill.trade_id)  # the venue made it after all (reported late)
                continue
            if self._reversible(fill):
                reversal = FillReversed(
                    ts=now,
                    client_order_id=fill.client_order_id,
                    strategy=fill.strategy,
                    trade_id=fill.trade_id,
                    account=fill.account,
                    symbol=fill.symbol,
                    side=fill.side,
                    price=fill.price,
                    quantity=fill.quantity,
                    fee=fill.fee,
                    liquidity=fill.liquidity,
                    leaves_quantity=fill.leaves_quantity,
                    fill_ts=fill.ts,
                    reason="the venue's trade log has no such trade: a fill it never made",
                )
                self._bus.publish(reversal)
                reversals.append(reversal)
                self.reversals.append(reversal)
                continue
            mismatches.append(
                Discrepancy(
                    kind="fill_unknown_at_venue",
                    subject=fill.trade_id,
                    ours=f"{fill.client_order_id} {fill.side.name} {fill.quantity}",
                    venue="no such trade",
                    detail="we applied a fill the venue never reported",
                )
            )
        return reversals

    def _reversible(self, fill: OrderFilled) -> bool:
        """Whether ``fill`` can be undone exactly: its order holds it and every pool of
        its account applied it since its last checkpoint."""
        order = self._execution.orders.get(fill.client_order_id)
        if order is None or fill.trade_id not in order.trade_ids:
            return False
        pools = [p for p in self._portfolios.values() if p.account == fill.account]
        return bool(pools) and all(p.applied_since_checkpoint(fill.trade_id) for p in pools)

    def _check_transfers(self, mismatches: list[Discrepancy]) -> None:
        """Venue transfers between our pools vs the transfers the books applied.

        A venue transfer the books lack (its journal record was lost in a crash) is
        provable: the venue moved cash between two of our pools, so it is applied and
        journaled once. A transfer applied here that the venue never made is a mismatch.
        """
        log = getattr(self._exchange, "transfer_log", None)
        if log is None:
            return
        applied = self._applied_transfers
        for venue in log[self.venue_transfer_seq :]:
            self.venue_transfer_seq += 1
            if venue.transfer_id in applied:
                continue
            transfers = CapitalTransfers(
                bus=self._bus,
                clock=self._clock,
                exchange=self._exchange,
                portfolios=self._portfolios,
            )
            source = transfers.pool(venue.from_account)
            target = transfers.pool(venue.to_account)
            if source is None or target is None or source.cash < venue.amount:
                mismatches.append(
                    Discrepancy(
                        kind="transfer_not_applicable",
                        subject=venue.transfer_id,
                        ours="not applied",
                        venue=f"{venue.from_account} -> {venue.to_account} {venue.amount}",
                        detail="a venue transfer the books lack and cannot take",
                    )
                )
                continue
            recovered = transfers.record(
                venue,
                source,
                target,
                reason="venue transfer log has a transfer the books never applied",
                actor=self.actor,
            )
            self.transfers_recovered.append(recovered)
        known = {venue.transfer_id for venue in log}
        for transfer_id in sorted(applied - known):
            applied.discard(transfer_id)  # reported once: the mismatch halts the node
            mismatches.append(
                Discrepancy(
                    kind="transfer_unknown_at_venue",
                    subject=transfer_id,
                    ours="applied",
                    venue="no such transfer",
                    detail="the books applied a transfer the venue never made",
                )
            )

    def _check_accounts(self, mismatches: list[Discrepancy]) -> int:
        """Cash and positions of each pool vs its venue sub-account; accounts compared."""
        cash_by_account: dict[str, int] = {}
        positions_by_account: dict[str, dict[str, int]] = {}
        for portfolio in self._portfolios.values():
            account = portfolio.account
            cash_by_account[account] = cash_by_account.get(account, 0) + portfolio.cash
            held = positions_by_account.setdefault(account, {})
            for symbol, position in portfolio.positions.items():
                held[symbol] = held.get(symbol, 0) + position.quantity
        for account in sorted(cash_by_account):
            if account not in self._exchange.accounts:
                mismatches.append(
                    Discrepancy(
                        kind="account_missing_at_venue",
                        subject=account,
                        ours=str(cash_by_account[account]),
                        venue="no such account",
                    )
                )
                continue
            venue_cash, venue_positions = self._exchange.account_snapshot(account)
            if venue_cash != cash_by_account[account]:
                mismatches.append(
                    Discrepancy(
                        kind="cash",
                        subject=account,
                        ours=str(cash_by_account[account]),
                        venue=str(venue_cash),
                    )
                )
            ours = positions_by_account[account]
            for symbol in sorted(set(ours) | set(venue_positions)):
                mine, theirs = ours.get(symbol, 0), venue_positions.get(symbol, 0)
                if mine != theirs:
                    mismatches.append(
                        Discrepancy(
                            kind="position",
                            subject=f"{account}/{symbol}",
                            ours=str(mine),
                            venue=str(theirs),
                        )
                    )
        return len(cash_by_account)

    def _check_open_orders(self, mismatches: list[Discrepancy], now: int) -> int:
        """Orders open here vs resting at the venue; orders compared.

        An order open here that the venue closed by a cancel, expiry or rejection whose
        report we lost is provable: the venue's answer is re-delivered once (journaled as
        ``OrderOutcomeRecovered``) and resolves it. So is an order sent but never
        acknowledged that the venue has no record of at all (it never arrived: a lost
        rejection by a disconnected or overloaded gateway): it is closed as rejected,
        ``unknown_order``. Anything else is a mismatch.
        """
        exchange = self._exchange
        venue_open = {request.client_order_id for request in exchange.open_orders()}
        knows = getattr(exchange, "knows_order", None)
        ours = self._execution.open_orders()
        for order in ours:
            if order.client_order_id in venue_open:
                continue
            outcome = exchange.order_outcome(order.client_order_id)
            if (
                outcome is None
                and knows is not None
                and order.status is OrderStatus.SUBMITTED
                and not knows(order.client_order_id)
            ):
                outcome = VenueOrderRejected(
                    ts=now,
                    client_order_id=order.client_order_id,
                    reason=RejectReason.UNKNOWN_ORDER,
                    detail="the venue has no record of this order: it never arrived",
                )
            if isinstance(outcome, VenueOrderCanceled | VenueOrderRejected):
                self._bus.publish(
                    OrderOutcomeRecovered(
                        ts=now,
                        client_order_id=order.client_order_id,
                        outcome=type(outcome).__name__,
                        reason=str(outcome.reason),
                    )
                )
                self._bus.publish(outcome)
                self.outcomes_recovered += 1
        ours = self._execution.open_orders()
        ours_open = {order.client_order_id for order in ours}
        for order in ours:
            if order.client_order_id not in venue_open:
                mismatches.append(
                    Discrepancy(
                        kind="open_order_missing_at_venue",
                        subject=order.client_order_id,
                        ours=order.status.value,
                        venue="not open",
                        detail="open here, unknown or closed at the venue",
                    )
                )
        for client_order_id in sorted(venue_open - ours_open):
            known = self._execution.orders.get(client_order_id)
            mismatches.append(
                Discrepancy(
                    kind="venue_order_not_open_here",
                    subject=client_order_id,
                    ours="unknown" if known is None else known.status.value,
                    venue="open",
                    detail="resting at the venue, not open in execution",
                )
            )
        return len(venue_open | ours_open)


def _halt_reason(mismatches: list[Discrepancy]) -> str:
    """One line naming the first discrepancies (the event carries all of them)."""
    shown = "; ".join(
        f"{d.kind} {d.subject}: ours {d.ours}, venue {d.venue}" for d in mismatches[:3]
    )
    more = len(mismatches) - 3
    suffix = f" (+{more} more)" if more > 0 else ""
    return f"reconciliation mismatch: {shown}{suffix}"
