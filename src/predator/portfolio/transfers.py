"""Capital transfers between pools: exact, atomic, journaled.

A transfer moves free cash from one capital pool (a venue sub-account) to another: the
venue moves it first (it may refuse: :class:`CapitalTransferRefused`), then both
portfolios and the ledger take it in one balanced transaction, and the journal records
:class:`CapitalTransferred`, the fact replay, audit and crash recovery rebuild it from.
"""

from __future__ import annotations

from collections.abc import Mapping

from predator.core.bus import MessageBus
from predator.core.clock import Clock
from predator.core.events import Event
from predator.ledger.ledger import Transaction
from predator.portfolio.portfolio import Portfolio
from predator.venue.paper_exchange import PaperExchange, TransferRefused, VenueTransfer

__all__ = [
    "CapitalTransferRefused",
    "CapitalTransferred",
    "CapitalTransfers",
    "TransferInvalid",
    "apply_transfer",
]


class CapitalTransferred(Event, frozen=True, kw_only=True):
    """``amount`` money units moved from pool ``from_pool`` to ``to_pool`` (accounts).

    ``transfer_id`` is the venue's id (``X<n>``); ``reason`` why it was made and ``actor``
    who made it (``allocator``, ``operator:<name>``, ``reconciliation``). The pools' cash
    after it (``from_cash_after``, ``to_cash_after``) lets a replay prove it applied the
    same amount the live node did: a tampered amount is an audit finding.
    """

    transfer_id: str
    from_pool: str
    to_pool: str
    amount: int
    reason: str
    actor: str
    from_cash_after: int
    to_cash_after: int


class CapitalTransferRefused(Event, frozen=True, kw_only=True):
    """A transfer that was asked for and not made; nothing moved.

    ``reason`` is why it was refused (the venue's or the books' one line); ``requested_for``
    the reason it was asked for.
    """

    from_pool: str
    to_pool: str
    amount: int
    reason: str
    requested_for: str
    actor: str


class TransferInvalid(ValueError):
    """A transfer the books cannot take (unknown pool, bad amount, cash would go negative)."""


def apply_transfer(event: CapitalTransferred, source: Portfolio, target: Portfolio) -> None:
    """Apply ``event`` to both pools and their ledger, atomically (all or nothing).

    One balanced transaction when the pools share a ledger (the kernel's), one per ledger
    otherwise (a replay rebuilds each pool in its own). Raises :class:`TransferInvalid`
    before anything changes when the amount is not a positive int, the pools are the same,
    or the source's cash would go negative.
    """
    amount = event.amount
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise TransferInvalid(f"transfer {event.transfer_id}: amount {amount!r} is not > 0")
    if source is target or source.account == target.account:
        raise TransferInvalid(f"transfer {event.transfer_id}: from and to are one pool")
    if source.cash < amount:
        raise TransferInvalid(
            f"transfer {event.transfer_id}: pool {source.account} has cash {source.cash},"
            f" less than {amount}"
        )
    reference = f"transfer {event.transfer_id} {source.account}->{target.account}"
    out_legs = source.transfer_postings(-amount)
    in_legs = target.transfer_postings(amount)
    if source.ledger is target.ledger:
        source.ledger.post(
            Transaction(ts=event.ts, reference=reference, postings=out_legs + in_legs)
        )
    else:
        source.ledger.post(Transaction(ts=event.ts, reference=reference, postings=out_legs))
        target.ledger.post(Transaction(ts=event.ts, reference=reference, postings=in_legs))
    source.book_transfer(-amount)
    target.book_transfer(amount)


class CapitalTransfers:
    """Moves capital between the pools of one node: venue, portfolios, ledger, journal.

    ``portfolios`` are the node's pools (any keys; each is found by its ``account``).

    >>> transfers = CapitalTransfers(bus=bus, clock=clock, exchange=exchange,
    ...                              portfolios=kernel.portfolios)  # doctest: +SKIP
    >>> transfers.transfer("trend", "mm", 1_000_000, reason="rebalance", actor="allocator")
    ... # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        bus: MessageBus,
        clock: Clock,
        exchange: PaperExchange,
        portfolios: Mapping[str, Portfolio],
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._exchange = exchange
        self._portfolios = portfolios
        self.transferred: list[CapitalTransferred] = []
        self.refused: list[CapitalTransferRefused] = []

    def pool(self, account: str) -> Portfolio | None:
        """The portfolio of pool ``account`` (None when no single pool holds it)."""
        found = [p for p in self._portfolios.values() if p.account == account]
        return found[0] if len(found) == 1 else None

    def transferable(self, account: str) -> int:
        """Money units pool ``account`` may move out now (free cash at the venue and here)."""
        portfolio = self.pool(account)
        if portfolio is None:
            return 0
        return max(0, min(portfolio.cash, self._exchange.transferable(account)))

    def transfer(
        self, from_pool: str, to_pool: str, amount: int, *, reason: str, actor: str
    ) -> CapitalTransferred | CapitalTransferRefused:
        """Move ``amount`` money units of free cash; returns the journaled outcome.

        Refused (and journaled as :class:`CapitalTransferRefused`, nothing moved) when a
        pool is unknown, the amount is not a positive int, or the venue refuses it.
        """
        source, target = self.pool(from_pool), self.pool(to_pool)
        problem = None
        if source is None or target is None:
            missing = from_pool if source is None else to_pool
            problem = f"no single pool holds account {missing!r}"
        elif isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            problem = f"amount must be an int > 0, got {amount!r}"
        elif amount > source.cash:
            problem = f"pool {from_pool} has cash {source.cash}, less than {amount}"
        venue: VenueTransfer | None = None
        if problem is None:
            try:
                venue = self._exchange.transfer(from_pool, to_pool, amount)
            except TransferRefused as refused:
                problem = f"venue refused: {refused.reason}"
        if venue is None or source is None or target is None:
            event = CapitalTransferRefused(
                ts=self._clock.now_ns(),
                from_pool=from_pool,
                to_pool=to_pool,
                amount=amount,
                reason=problem or "refused",
                requested_for=reason,
                actor=actor,
            )
            self.refused.append(event)
            self._bus.publish(event)
            return event
        return self.record(venue, source, target, reason=reason, actor=actor)

    def record(
        self,
        venue: VenueTransfer,
        source: Portfolio,
        target: Portfolio,
        *,
        reason: str,
        actor: str,
    ) -> CapitalTransferred:
        """Apply a transfer the venue made to the books, then journal it (the books first,
        so the invariant check the journaled event triggers sees them moved)."""
        amount = venue.amount
        event = CapitalTransferred(
            ts=self._clock.now_ns(),
            transfer_id=venue.transfer_id,
            from_pool=venue.from_account,
            to_pool=venue.to_account,
            amount=amount,
            reason=reason,
            actor=actor,
            from_cash_after=source.cash - amount,
            to_cash_after=target.cash + amount,
        )
        apply_transfer(event, source, target)
        self.transferred.append(event)
        self._bus.publish(event)
        return event
