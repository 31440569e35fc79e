"""Snapshots of a kernel's derived state, so recovery does not replay from the beginning.

Every ``snapshot_every`` journal events the kernel, at the start of a bar (a quiescent
point: every effect of the previous bar is applied, none of this one), flushes its journal
and stores a :class:`KernelSnapshot` beside it: the pools and ledger, every order, every
breaker, the control-plane events so far (kill switches, trading states, halts, stopped
strategies), the equity curve and the kill switch's equity marks. Recovery restores the
newest snapshot that the durable journal covers and replays only the records after it.
The journal stays the truth: a snapshot is derived state, checked against the chain value
of the record it follows, and never needed (recovery without one replays everything).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from predator.execution.heartbeat import ExecutionHalted, ExecutionResumed
from predator.execution.order import Order, OrderStatus
from predator.portfolio.portfolio import PortfolioSavedState
from predator.risk.circuit_breaker import BreakerSavedState, BreakerStateChanged, CircuitBreaker
from predator.risk.emergency_stop import KillSwitchReset, KillSwitchTripped, OperatorApproved
from predator.risk.risk_engine import TradingStateChanged
from predator.strategy.runner import StrategyStopped
from predator.venue.orders import OrderRequest

if TYPE_CHECKING:
    from predator.node.kernel import Kernel

__all__ = [
    "CONTROL_EVENTS",
    "ControlEvent",
    "KernelSnapshot",
    "SnapshotMismatch",
    "apply_control",
    "decode_snapshot",
    "restore_snapshot",
    "take_snapshot",
]

SNAPSHOT_VERSION = 1

ControlEvent = (
    KillSwitchTripped
    | OperatorApproved
    | KillSwitchReset
    | TradingStateChanged
    | ExecutionHalted
    | ExecutionResumed
    | StrategyStopped
    | BreakerStateChanged
)
"""Journaled facts that change who may trade: replayed on restore, never re-published."""

CONTROL_EVENTS: tuple[type, ...] = (
    KillSwitchTripped,
    OperatorApproved,
    KillSwitchReset,
    TradingStateChanged,
    ExecutionHalted,
    ExecutionResumed,
    StrategyStopped,
    BreakerStateChanged,
)


class SnapshotMismatch(RuntimeError):
    """A snapshot that does not belong to this journal or this kernel: it is not used."""


class SavedOrder(msgspec.Struct, frozen=True, array_like=True):
    """One order of execution's book, as a snapshot keeps it."""

    request: OrderRequest
    strategy: str
    status: OrderStatus
    venue_order_id: str | None
    filled_quantity: int
    fees: int
    trade_ids: list[str]


class KernelSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A kernel's derived state after journal record ``seq`` (see the module docstring)."""

    version: int = SNAPSHOT_VERSION
    seq: int
    ts: int
    """Kernel time when it was taken (the open time of the bar about to be processed)."""
    bars: int
    """Bars fully processed: the equity curve's length."""
    pools: dict[str, PortfolioSavedState]
    ledger: dict[str, int]
    ledger_transactions: int
    orders: list[SavedOrder]
    approved: dict[str, str]
    """Client order id -> strategy of each approved order still open."""
    breakers: dict[str, BreakerSavedState]
    control: list[ControlEvent]
    curve: list[int]
    exposed_bars: int
    last_exposed: bool
    fills: int
    kill_switch_trips: int
    equity_marks: tuple[int | None, int | None, int | None, int | None]


_encoder = msgspec.json.Encoder()  # JSON: money may pass 64 bits, msgpack stops there
_decoder = msgspec.json.Decoder(KernelSnapshot)


def _breakers(kernel: Kernel) -> dict[str, CircuitBreaker]:
    """Every breaker of the kernel by scope name."""
    found: dict[str, CircuitBreaker] = {}
    for breaker in kernel.breakers.values():
        found[breaker.scope] = breaker
    for breaker in kernel.risk.engine_breakers.values():
        found[breaker.scope] = breaker
    if kernel.risk.global_breaker is not None:
        found[kernel.risk.global_breaker.scope] = kernel.risk.global_breaker
    return found


def take_snapshot(kernel: Kernel) -> bytes:
    """Encode ``kernel``'s derived state now (call it at a quiescent point)."""
    risk = kernel.risk
    pending = set(risk.pending_orders())
    approved = {
        cid: order.strategy for cid, order in kernel.execution.orders.items() if cid in pending
    }
    snapshot = KernelSnapshot(
        seq=kernel.journal.last_seq,
        ts=kernel.clock.now_ns(),
        bars=len(kernel.curve.values),
        pools={name: p.export_state() for name, p in kernel.portfolios.items()},
        ledger=dict(kernel.ledger.balances_view()),
        ledger_transactions=kernel.ledger.transactions,
        orders=[
            SavedOrder(
                order.request,
                order.strategy,
                order.status,
                order.venue_order_id,
                order.filled_quantity,
                order.fees,
                sorted(order.trade_ids),
            )
            for order in kernel.execution.orders.values()
        ],
        approved=approved,
        breakers={scope: breaker.export_state() for scope, breaker in _breakers(kernel).items()},
        control=list(kernel.control_log),  # type: ignore[arg-type]
        curve=list(kernel.curve.values),
        exposed_bars=kernel.curve.exposed_bars,
        last_exposed=kernel.curve.last_exposed,
        fills=kernel.fills,
        kill_switch_trips=kernel.kill_switch_trips,
        equity_marks=kernel.kill_switch.equity_marks(),
    )
    return _encoder.encode(snapshot)


def decode_snapshot(payload: bytes) -> KernelSnapshot:
    """Decode a stored snapshot; raises :class:`SnapshotMismatch` when it cannot be read."""
    try:
        snapshot = _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotMismatch(f"the snapshot does not decode ({exc})") from None
    if snapshot.version != SNAPSHOT_VERSION:
        raise SnapshotMismatch(
            f"snapshot version {snapshot.version}, this Predator reads {SNAPSHOT_VERSION}"
        )
    return snapshot


def restore_snapshot(kernel: Kernel, snapshot: KernelSnapshot) -> set[str]:
    """Put ``snapshot``'s state into a freshly built ``kernel``; returns the applied trade ids.

    Nothing is published or journaled. Raises :class:`SnapshotMismatch` when the snapshot's
    pools or breakers are not this kernel's (another configuration).
    """
    if set(snapshot.pools) != set(kernel.portfolios):
        raise SnapshotMismatch(
            f"snapshot pools {sorted(snapshot.pools)} are not the kernel's "
            f"{sorted(kernel.portfolios)}"
        )
    breakers = _breakers(kernel)
    if set(snapshot.breakers) != set(breakers):
        raise SnapshotMismatch("the snapshot's circuit breakers are not the kernel's")
    for name, saved in snapshot.pools.items():
        kernel.portfolios[name].load_state(saved)
    kernel.ledger.restore_balances(snapshot.ledger, snapshot.ledger_transactions)
    applied: set[str] = set()
    orders = kernel.execution.orders
    for saved_order in snapshot.orders:
        order = Order(saved_order.request, saved_order.strategy)
        order.status = saved_order.status
        order.venue_order_id = saved_order.venue_order_id
        order.filled_quantity = saved_order.filled_quantity
        order.fees = saved_order.fees
        order.trade_ids = set(saved_order.trade_ids)
        applied.update(order.trade_ids)
        orders[order.client_order_id] = order
    for scope, saved_breaker in snapshot.breakers.items():
        breakers[scope].load_state(saved_breaker)
    apply_control(kernel, snapshot.control, breakers_too=False)
    kernel.curve.values[:] = snapshot.curve
    kernel.curve.exposed_bars = snapshot.exposed_bars
    kernel.curve.last_exposed = snapshot.last_exposed
    kernel.fills = snapshot.fills
    kernel.kill_switch_trips = snapshot.kill_switch_trips
    kernel.kill_switch.load_equity_marks(snapshot.equity_marks)
    return applied


def apply_control(kernel: Kernel, events: Iterable[object], *, breakers_too: bool = True) -> None:
    """Replay journaled control-plane events into ``kernel``, publishing nothing.

    Kill switches (trips, approvals, resets), trading states, execution halts, stopped
    strategies and, with ``breakers_too``, breaker state changes. The events also join the
    kernel's control log, so the next snapshot carries them.
    """
    breakers = _breakers(kernel) if breakers_too else {}
    for event in events:
        if not isinstance(event, CONTROL_EVENTS):
            continue
        if isinstance(event, BreakerStateChanged):
            breaker = breakers.get(event.scope)
            if breaker is not None:
                breaker.replay(event)
            continue
        kernel.control_log.append(event)  # type: ignore[arg-type]
        if isinstance(event, KillSwitchTripped | OperatorApproved | KillSwitchReset):
            kernel.kill_switch.replay([event])
            if isinstance(event, KillSwitchTripped):
                kernel.kill_switch_trips += 1
        elif isinstance(event, TradingStateChanged):
            kernel.risk.restore_state(event.scope, event.state)
        elif isinstance(event, ExecutionHalted):
            kernel.execution.halted = event.reason
        elif isinstance(event, ExecutionResumed):
            kernel.execution.halted = None
        elif isinstance(event, StrategyStopped):
            runner = kernel.runners.get(event.strategy)
            if runner is not None and runner.stopped is None:
                runner.stopped = event.reason
