"""Rebuild derived state from the journal: positions, cash, PnL, orders, halts.

The journal is the truth (ARCHITECTURE.md §1): replaying its events into a fresh
Portfolio and Ledger per capital pool, with the run's instrument and initial capital,
gives back what the node held after the last event. The audit runs this same replay
and checks it; ``predator journal replay`` prints the state it rebuilds.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import msgspec

from predator.core.clock import TimeWarp
from predator.core.numbers import from_decimal, to_decimal
from predator.execution.order import (
    TRANSITIONS,
    FillReversed,
    OrderFilled,
    OrderStatus,
    status_after_reversal,
)
from predator.ledger.journal import Journal, JournalCorrupted, JournalRecord
from predator.ledger.ledger import BalanceEquationViolated, Ledger
from predator.market.instrument import Instrument
from predator.portfolio.portfolio import Portfolio
from predator.portfolio.transfers import CapitalTransferred, TransferInvalid, apply_transfer
from predator.risk.emergency_stop import EmergencyStop, RestoreFailed, TripStatus
from predator.venue.fees import CommissionModel

__all__ = [
    "AnomalyHandler",
    "JournalReplayer",
    "JournalUnreadable",
    "OrderState",
    "PoolState",
    "PositionState",
    "ReplayState",
    "read_journal",
    "replay",
    "replay_journal",
    "reported_initial_capital",
    "reversed_trade_ids",
]

AnomalyHandler = Callable[[int | None, str, str], None]
"""Receives ``(seq, check, message)`` for each inconsistency the replay meets."""

_KILL_SWITCH_EVENTS = frozenset({"KillSwitchTripped", "OperatorApproved", "KillSwitchReset"})
_MALFORMED = (KeyError, TypeError, ValueError, ArithmeticError, msgspec.ValidationError)


class JournalUnreadable(Exception):
    """The journal file is missing or is not a journal at all (a user error)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# -- the rebuilt state ----------------------------------------------------------------------
class PositionState(msgspec.Struct, frozen=True, kw_only=True):
    """An open position: signed quantity (size units) and cost (money units)."""

    symbol: str
    quantity: int
    cost: int


class PoolState(msgspec.Struct, frozen=True, kw_only=True):
    """One capital pool (venue sub-account) as the journal leaves it; money in money units."""

    account: str
    strategy: str
    engine: str
    initial_cash: int
    cash: int
    realized_pnl: int
    fees: int
    fills: int
    trades: int
    positions: dict[str, PositionState]
    transfers: int = 0
    """Net capital transferred in from other pools (money units; out is negative)."""


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    """One order's replayed status; ``submitted_seq`` is the seq of its first event."""

    client_order_id: str
    strategy: str
    account: str | None
    symbol: str | None
    side: int | None
    status: str
    filled_quantity: int
    fees: int
    venue_order_id: str | None
    submitted_seq: int


class ReplayState(msgspec.Struct, frozen=True, kw_only=True):
    """The derived state after the last journal event.

    ``pools`` are keyed by account; ``open_orders`` are the orders not yet in a terminal
    state; ``kill_switches`` the scopes still tripped (rebuilt by ``EmergencyStop.restore``);
    ``anomalies`` every inconsistency met on the way (the audit turns them into findings).
    """

    instrument: Instrument | None
    events: int
    last_seq: int
    digest: str
    complete: bool
    pools: dict[str, PoolState]
    orders: int
    open_orders: tuple[OrderState, ...]
    trading_states: dict[str, str]
    kill_switches: tuple[TripStatus, ...]
    breakers: dict[str, str]
    stopped_strategies: dict[str, str]
    execution_halted: str | None
    anomalies: tuple[str, ...]

    @property
    def cash(self) -> int:
        """Cash of all pools together (money units)."""
        return sum(pool.cash for pool in self.pools.values())

    @property
    def realized_pnl(self) -> int:
        """Realized PnL of all pools together (money units, before fees)."""
        return sum(pool.realized_pnl for pool in self.pools.values())

    @property
    def fees(self) -> int:
        """Fees of all pools together (money units)."""
        return sum(pool.fees for pool in self.pools.values())

    def position(self, symbol: str, account: str = "main") -> int:
        """Signed open quantity of ``symbol`` in pool ``account`` (0 when none)."""
        pool = self.pools.get(account)
        held = None if pool is None else pool.positions.get(symbol)
        return 0 if held is None else held.quantity

    # -- output -------------------------------------------------------------------------
    def _money(self, units: int) -> str:
        if self.instrument is None:
            return str(units)
        return f"{to_decimal(units, self.instrument.money_precision):f}"

    def _quantity(self, units: int) -> str:
        if self.instrument is None:
            return str(units)
        return f"{to_decimal(units, self.instrument.size_precision):f}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready builtins: money and quantities as exact decimal strings."""
        instrument = self.instrument
        return {
            "instrument": None if instrument is None else msgspec.to_builtins(instrument),
            "money_precision": None if instrument is None else instrument.money_precision,
            "events": self.events,
            "last_seq": self.last_seq,
            "digest": self.digest,
            "complete": self.complete,
            "cash": self._money(self.cash),
            "realized_pnl": self._money(self.realized_pnl),
            "fees": self._money(self.fees),
            "pools": {
                account: {
                    "strategy": pool.strategy,
                    "engine": pool.engine,
                    "initial_cash": self._money(pool.initial_cash),
                    "cash": self._money(pool.cash),
                    "realized_pnl": self._money(pool.realized_pnl),
                    "fees": self._money(pool.fees),
                    "fills": pool.fills,
                    "trades": pool.trades,
                    **({"transfers": self._money(pool.transfers)} if pool.transfers else {}),
                    "positions": {
                        symbol: {
                            "quantity": self._quantity(held.quantity),
                            "cost": self._money(held.cost),
                        }
                        for symbol, held in pool.positions.items()
                    },
                }
                for account, pool in self.pools.items()
            },
            "orders": self.orders,
            "open_orders": [
                {
                    "client_order_id": order.client_order_id,
                    "strategy": order.strategy,
                    "account": order.account,
                    "symbol": order.symbol,
                    "side": order.side,
                    "status": order.status,
                    "filled_quantity": self._quantity(order.filled_quantity),
                    "venue_order_id": order.venue_order_id,
                    "seq": order.submitted_seq,
                }
                for order in self.open_orders
            ],
            "trading_states": dict(self.trading_states),
            "kill_switches": msgspec.to_builtins(self.kill_switches),
            "breakers": dict(self.breakers),
            "stopped_strategies": dict(self.stopped_strategies),
            "execution_halted": self.execution_halted,
            "anomalies": list(self.anomalies),
        }

    def render(self) -> str:
        """A plain-text report of the state, one fact per line."""
        lines = [
            f"journal: {self.events} events, last seq {self.last_seq}, digest {self.digest or '-'}"
            f", {'complete' if self.complete else 'INCOMPLETE (no RunCompleted)'}"
        ]
        if self.instrument is not None:
            i = self.instrument
            lines.append(
                f"instrument: {i.symbol} on {i.venue} in {i.quote_currency}"
                f" (money precision {i.money_precision})"
            )
        for account, pool in self.pools.items():
            lines.append(
                f"pool {account} ({pool.strategy}, engine {pool.engine}):"
                f" cash {self._money(pool.cash)}, realized pnl {self._money(pool.realized_pnl)},"
                f" fees {self._money(pool.fees)}, fills {pool.fills}, trades {pool.trades}"
                + (f", transfers {self._money(pool.transfers)}" if pool.transfers else "")
            )
            for symbol, held in pool.positions.items():
                lines.append(
                    f"  position {symbol}: {self._quantity(held.quantity)}"
                    f" (cost {self._money(held.cost)})"
                )
        lines.append(f"orders: {self.orders}, open: {len(self.open_orders)}")
        for order in self.open_orders:
            lines.append(
                f"  open order {order.client_order_id} ({order.strategy}): {order.status},"
                f" filled {self._quantity(order.filled_quantity)} (seq {order.submitted_seq})"
            )
        states = ", ".join(f"{scope}={state}" for scope, state in self.trading_states.items())
        lines.append(f"trading states: {states or 'none'}")
        if self.kill_switches:
            for trip in self.kill_switches:
                lines.append(
                    f"kill switch tripped: {trip.scope} by {trip.actor} ({trip.trigger}):"
                    f" {trip.reason}"
                )
        else:
            lines.append("kill switches tripped: none")
        if self.breakers:
            breakers = ", ".join(f"{scope}={state}" for scope, state in self.breakers.items())
            lines.append(f"breakers: {breakers}")
        for strategy, reason in self.stopped_strategies.items():
            lines.append(f"strategy stopped: {strategy}: {reason}")
        if self.execution_halted is not None:
            lines.append(f"execution halted: {self.execution_halted}")
        for anomaly in self.anomalies:
            lines.append(f"anomaly: {anomaly}")
        return "\n".join(lines)


# -- the replay -----------------------------------------------------------------------------
class _Order:
    __slots__ = (
        "account",
        "client_order_id",
        "fees",
        "filled_quantity",
        "fills",
        "first_seq",
        "side",
        "status",
        "strategy",
        "symbol",
        "venue_order_id",
    )

    def __init__(self, client_order_id: str, strategy: str, first_seq: int) -> None:
        self.client_order_id = client_order_id
        self.strategy = strategy
        self.first_seq = first_seq
        self.status = OrderStatus.INITIALIZED
        self.account: str | None = None
        self.symbol: str | None = None
        self.side: int | None = None
        self.venue_order_id: str | None = None
        self.filled_quantity = 0
        self.fees = 0
        self.fills = 0


class _Pool:
    __slots__ = ("engine", "portfolio", "strategy")

    def __init__(self, strategy: str, engine: str, portfolio: Portfolio) -> None:
        self.strategy = strategy
        self.engine = engine
        self.portfolio = portfolio


class JournalReplayer:
    """Applies journal records one by one to freshly built derived state.

    Every ``OrderFilled`` goes into the Portfolio and Ledger of its pool exactly as
    journaled (the live portfolio applied each one), and the balance equation is
    checked after each; every ``CapitalTransferred`` moves cash between two pools the
    same way (each pool's cash after it must be what the node journaled). Inconsistencies
    go to ``on_anomaly`` with their seq and the name of the check (``coverage``,
    ``order_state``, ``duplicate_fill``, ``balance``, ``fee``, ``trading_state``,
    ``decode``, ``complete``); nothing raises.

    ``initial_capital`` is the run's total capital (RunCompleted's ``initial_capital``);
    RunStarted records each pool's share of it. Without it the configured cash is used.
    """

    def __init__(
        self,
        *,
        initial_capital: int | None = None,
        on_anomaly: AnomalyHandler | None = None,
        reversed_trade_ids: Collection[str] = (),
    ) -> None:
        self._initial_capital = initial_capital
        self._reversed = frozenset(reversed_trade_ids)
        """Fills a later ``FillReversed`` undoes (:func:`reversed_trade_ids`): not
        fee-checked, and not their order's first fill for the commission model."""
        self._on_anomaly = on_anomaly
        self.anomalies: list[str] = []
        self.instrument: Instrument | None = None
        self.pools: dict[str, _Pool] = {}
        self.commission: CommissionModel | None = None
        self.started_seq: int | None = None
        self.completed: tuple[int, dict[str, Any]] | None = None
        self.orders: dict[str, _Order] = {}
        self.decisions: dict[str, bool] = {}
        self.trade_ids: dict[str, int] = {}
        self.transfer_ids: dict[str, int] = {}
        self.fills = 0
        self.events = 0
        self.last_seq = 0
        self.digest = ""
        self.trading_states: dict[str, str] = {"global": "active"}
        self.breakers: dict[str, str] = {}
        self.stopped: dict[str, str] = {}
        self.execution_halted: str | None = None
        self._kill_records: list[JournalRecord] = []
        self._no_pool_reported = False
        self._kill_switch: EmergencyStop | None = None
        self._kill_restored = 0

    def _anomaly(self, seq: int | None, check: str, message: str) -> None:
        where = "" if seq is None else f"seq {seq}: "
        self.anomalies.append(f"{where}{check}: {message}")
        if self._on_anomaly is not None:
            self._on_anomaly(seq, check, message)

    # -- applying ---------------------------------------------------------------------
    def apply(self, record: JournalRecord) -> None:
        """Move the derived state by one journal record."""
        self.events += 1
        self.last_seq = record.seq
        self.digest = record.chain.hex()
        if self.completed is not None:
            self._anomaly(
                record.seq,
                "complete",
                f"{record.type} after RunCompleted at seq {self.completed[0]}"
                " (RunCompleted must be the last event)",
            )
        payload = record.payload
        if not payload:
            self._anomaly(
                record.seq, "decode", f"{record.type} payload is empty or does not decode"
            )
            return
        handler = _HANDLERS.get(record.type)
        if handler is None:
            return
        try:
            if not isinstance(payload, Mapping):
                raise TypeError(f"payload is {type(payload).__name__}, not an object")
            handler(self, record.seq, payload, record)
        except _MALFORMED as exc:
            self._anomaly(record.seq, "decode", f"{record.type} payload is malformed: {exc!r}")

    def _run_started(self, seq: int, payload: Mapping[str, Any], _record: JournalRecord) -> None:
        if self.started_seq is not None:
            self._anomaly(seq, "complete", f"second RunStarted (first at seq {self.started_seq})")
            return
        self.started_seq = seq
        instrument = msgspec.convert(payload["instrument"], Instrument)
        config: Mapping[str, Any] = payload["config"]
        money_p = instrument.money_precision
        cash = from_decimal(str(config["cash"]), money_p)
        total = self._initial_capital if self._initial_capital is not None else cash
        specs: list[Mapping[str, Any]] = list(config.get("strategies") or ())
        if not specs:
            name = str(config.get("strategy", "main"))
            specs = [{"strategy": name, "name": name, "engine": name, "allocation": "1"}]
        pools: dict[str, _Pool] = {}
        shares = Fraction(0)
        for spec in specs:
            name = str(spec.get("name") or spec["strategy"])
            engine = str(spec.get("engine") or name)
            account = "main" if len(specs) == 1 else name
            share = Fraction(str(spec.get("allocation") or "1"))
            shares += share
            capital = total * share
            if capital.denominator != 1:
                self._anomaly(
                    seq,
                    "balance",
                    f"pool {account}: allocation {share} of {total} units is not a whole"
                    " number of money units",
                )
            ledger = Ledger(instrument.quote_currency, money_p)
            portfolio = Portfolio(
                bus=None,
                ledger=ledger,
                instruments=[instrument],
                initial_cash=int(capital),
                ts=int(payload.get("ts", 0)),
                account=account,
            )
            pools[account] = _Pool(name, engine, portfolio)
            self.trading_states.setdefault(f"engine:{engine}", "active")
            self.trading_states.setdefault(f"strategy:{name}", "active")
        if shares != 1:
            self._anomaly(seq, "balance", f"pool allocations add up to {shares}, not 1")
        self.instrument = instrument
        self.pools = pools
        if "commission" in config:
            self.commission = CommissionModel(
                instrument,
                rate=Decimal(str(config.get("commission", "0"))),
                fixed=Decimal(str(config.get("commission_fixed", "0"))),
                per_unit=Decimal(str(config.get("commission_per_unit", "0"))),
                maker_rate=None
                if config.get("maker_fee") is None
                else Decimal(str(config["maker_fee"])),
            )

    def _risk_decision(self, _seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        coid = str(payload["client_order_id"])
        approved = bool(payload["approved"])
        # One approval is enough: a later denial of a reused id does not unapprove it.
        self.decisions[coid] = self.decisions.get(coid, False) or approved

    def _require_approval(self, seq: int, coid: str, what: str) -> None:
        approved = self.decisions.get(coid)
        if approved is None:
            self._anomaly(seq, "coverage", f"{what} of order {coid} has no RiskDecision before it")
        elif not approved:
            self._anomaly(seq, "coverage", f"{what} of order {coid} was denied by the risk engine")

    def _transition(self, seq: int, order: _Order, target: OrderStatus, event: str) -> None:
        if target not in TRANSITIONS[order.status]:
            self._anomaly(
                seq,
                "order_state",
                f"{event} moves order {order.client_order_id} from {order.status.value} to"
                f" {target.value}, which the order state machine does not allow",
            )
        order.status = target

    def _order_submitted(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        coid = str(payload["client_order_id"])
        request: Mapping[str, Any] = payload["request"]
        self._require_approval(seq, coid, "submission")
        order = self.orders.get(coid)
        if order is not None:
            self._anomaly(
                seq,
                "coverage",
                f"order {coid} submitted again (first seen at seq {order.first_seq});"
                " a client order id is sent once",
            )
        else:
            order = self.orders[coid] = _Order(coid, str(payload["strategy"]), seq)
        order.account = str(request.get("account", "main"))
        order.symbol = str(request["symbol"])
        order.side = int(request["side"])
        self._transition(seq, order, OrderStatus.SUBMITTED, "OrderSubmitted")

    def _order_adopted(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        """A venue order adopted at recovery: its decision and submission were journaled
        only in the tail the crash lost, so the adoption stands for both."""
        coid = str(payload["client_order_id"])
        self.decisions[coid] = True
        request: Mapping[str, Any] = payload["request"]
        order = self.orders.get(coid)
        if order is None:
            order = self.orders[coid] = _Order(coid, str(payload["strategy"]), seq)
        order.account = str(request.get("account", "main"))
        order.symbol = str(request["symbol"])
        order.side = int(request["side"])
        self._transition(seq, order, OrderStatus.SUBMITTED, "OrderAdopted")
        if payload.get("venue_status") == "open":
            self._transition(seq, order, OrderStatus.ACCEPTED, "OrderAdopted")

    def _known(self, seq: int, payload: Mapping[str, Any], event: str) -> _Order | None:
        coid = str(payload["client_order_id"])
        order = self.orders.get(coid)
        if order is None:
            self._anomaly(seq, "coverage", f"{event} for order {coid}, which was never submitted")
        return order

    def _order_accepted(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        order = self._known(seq, payload, "OrderAccepted")
        if order is not None:
            order.venue_order_id = str(payload["venue_order_id"])
            self._transition(seq, order, OrderStatus.ACCEPTED, "OrderAccepted")

    def _order_rejected(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        coid = str(payload["client_order_id"])
        order = self.orders.get(coid)
        if order is None:
            # Execution refuses an approved order it cannot send (halted): initialized ->
            # rejected, without a submission.
            self._require_approval(seq, coid, "rejection")
            order = self.orders[coid] = _Order(coid, str(payload["strategy"]), seq)
        self._transition(seq, order, OrderStatus.REJECTED, "OrderRejected")

    def _order_canceled(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        order = self._known(seq, payload, "OrderCanceled")
        if order is not None:
            expired = payload.get("reason") == "expired"
            target = OrderStatus.EXPIRED if expired else OrderStatus.CANCELED
            self._transition(seq, order, target, "OrderCanceled")

    def _order_filled(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        fill = msgspec.convert(dict(payload), OrderFilled)
        if fill.quantity <= 0:
            self._anomaly(seq, "decode", f"fill {fill.trade_id} has quantity {fill.quantity}")
            return
        self.fills += 1
        first = self.trade_ids.get(fill.trade_id)
        if first is not None:
            self._anomaly(
                seq,
                "duplicate_fill",
                f"trade_id {fill.trade_id} applied twice (first at seq {first})",
            )
        else:
            self.trade_ids[fill.trade_id] = seq
        coid = fill.client_order_id
        self._require_approval(seq, coid, f"fill {fill.trade_id}")
        order = self.orders.get(coid)
        first_fill = True
        if order is None:
            self._anomaly(
                seq, "coverage", f"fill {fill.trade_id} of order {coid} has no OrderSubmitted"
            )
        else:
            first_fill = order.fills == 0
            reversed_ = fill.trade_id in self._reversed
            for field, ours, theirs in (
                ("account", order.account, fill.account),
                ("symbol", order.symbol, fill.symbol),
                ("side", order.side, int(fill.side)),
                ("strategy", order.strategy, fill.strategy),
            ):
                if ours is not None and ours != theirs:
                    self._anomaly(
                        seq,
                        "coverage",
                        f"fill {fill.trade_id} has {field} {theirs!r} but order {coid}"
                        f" has {ours!r}",
                    )
            if not reversed_:
                order.fills += 1
            order.filled_quantity += fill.quantity
            order.fees += fill.fee
            filled = fill.leaves_quantity == 0
            target = OrderStatus.FILLED if filled else OrderStatus.PARTIALLY_FILLED
            self._transition(seq, order, target, f"fill {fill.trade_id}")
        i = self.instrument
        checked = fill.trade_id not in self._reversed
        if checked and self.commission is not None and i is not None and fill.symbol == i.symbol:
            expected = self.commission.fee(
                fill.price, fill.quantity, first_fill=first_fill, liquidity=fill.liquidity
            )
            if expected != fill.fee:
                self._anomaly(
                    seq,
                    "fee",
                    f"fill {fill.trade_id} fee is {to_decimal(fill.fee, i.money_precision):f}"
                    " but the run's commission on"
                    f" {to_decimal(fill.quantity, i.size_precision):f}"
                    f" at {to_decimal(fill.price, i.price_precision):f}"
                    f" is {to_decimal(expected, i.money_precision):f}",
                )
        self._apply_fill(seq, fill)

    def _apply_fill(self, seq: int, fill: OrderFilled) -> None:
        if self.instrument is None:
            if not self._no_pool_reported:
                self._no_pool_reported = True
                self._anomaly(
                    seq,
                    "balance",
                    "fill without a readable RunStarted before it: no pool to replay it into",
                )
            return
        pool = self.pools.get(fill.account)
        if pool is None:
            self._anomaly(
                seq, "balance", f"fill {fill.trade_id} is for unknown pool {fill.account!r}"
            )
            return
        portfolio = pool.portfolio
        if fill.symbol not in portfolio.instruments:
            self._anomaly(
                seq, "balance", f"fill {fill.trade_id} is for unknown symbol {fill.symbol!r}"
            )
            return
        portfolio.apply_fill(fill)
        try:
            portfolio.check_balance_equation()
        except BalanceEquationViolated as violation:
            self._anomaly(
                seq,
                "balance",
                f"after fill {fill.trade_id}, pool {fill.account}: {violation}",
            )

    def _fill_reversed(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        """A fill reconciliation proved false: out of the counts, its order and its pool."""
        event = msgspec.convert(dict(payload), FillReversed)
        what = f"reversal of fill {event.trade_id}"
        if self.trade_ids.pop(event.trade_id, None) is None:
            self._anomaly(seq, "coverage", f"{what}: no such fill was applied")
            return
        self.fills -= 1
        order = self.orders.get(event.client_order_id)
        if order is not None:
            order.filled_quantity -= event.quantity
            order.fees -= event.fee
            if event.trade_id not in self._reversed:
                order.fills -= 1  # counted as a fill: the replay was not told ahead
            others = order.filled_quantity > 0
            order.status = status_after_reversal(order.status, event, others)
        pool = self.pools.get(event.account)
        if pool is None or not pool.portfolio.applied_since_checkpoint(event.trade_id):
            self._anomaly(seq, "balance", f"{what}: pool {event.account!r} never applied it")
            return
        portfolio = pool.portfolio
        portfolio.reverse_fill(event.trade_id)
        try:
            portfolio.check_balance_equation()
        except BalanceEquationViolated as violation:
            self._anomaly(seq, "balance", f"after {what}, pool {event.account}: {violation}")

    def _state_changed(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        scope = str(payload.get("scope", "global"))
        previous = str(payload["previous"])
        ours = self.trading_states.get(scope, "active")
        if previous != ours:
            self._anomaly(
                seq,
                "trading_state",
                f"{scope} changes from {previous}, but the replay has it {ours}",
            )
        self.trading_states[scope] = str(payload["state"])

    def _breaker(self, _seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        self.breakers[str(payload["scope"])] = str(payload["state"])

    def _kill_switch_event(
        self, _seq: int, _payload: Mapping[str, Any], record: JournalRecord
    ) -> None:
        self._kill_records.append(record)

    def _stopped(self, _seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        self.stopped[str(payload["strategy"])] = str(payload["reason"])

    def _halted(self, _seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        self.execution_halted = str(payload["reason"])

    def _resumed(self, _seq: int, _payload: Mapping[str, Any], _r: JournalRecord) -> None:
        self.execution_halted = None

    def _profit_allocated(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        postings = payload["transaction"]["postings"]
        total = sum(int(posting[1]) for posting in postings)
        if total:
            self._anomaly(seq, "balance", f"profit allocation is unbalanced by {total} units")

    def _capital_transferred(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        """A transfer between two pools: applied to both, each pool's balance equation
        checked, and each pool's cash after it compared with what the node journaled."""
        event = msgspec.convert({**payload, "type": "CapitalTransferred"}, CapitalTransferred)
        what = f"transfer {event.transfer_id} {event.from_pool} -> {event.to_pool}"
        source, target = self.pools.get(event.from_pool), self.pools.get(event.to_pool)
        if source is None or target is None:
            missing = event.from_pool if source is None else event.to_pool
            self._anomaly(seq, "balance", f"{what} names unknown pool {missing!r}")
            return
        first = self.transfer_ids.get(event.transfer_id)
        if first is not None:
            self._anomaly(
                seq,
                "duplicate_fill",
                f"{what}: transfer id applied twice (first at seq {first})",
            )
        self.transfer_ids.setdefault(event.transfer_id, seq)
        try:
            apply_transfer(event, source.portfolio, target.portfolio)
        except TransferInvalid as exc:
            self._anomaly(seq, "balance", f"{exc}; not applied")
            return
        for pool, journaled in (
            (source.portfolio, event.from_cash_after),
            (target.portfolio, event.to_cash_after),
        ):
            try:
                pool.check_balance_equation()
            except BalanceEquationViolated as violation:
                self._anomaly(seq, "balance", f"after {what}, pool {pool.account}: {violation}")
            if pool.cash != journaled:
                self._anomaly(
                    seq,
                    "balance",
                    f"after {what}, pool {pool.account} has cash {self._units(pool.cash)}"
                    f" replayed, the node journaled {self._units(journaled)}",
                )

    def _units(self, amount: int) -> str:
        i = self.instrument
        return str(amount) if i is None else f"{to_decimal(amount, i.money_precision):f}"

    def _run_completed(self, seq: int, payload: Mapping[str, Any], _r: JournalRecord) -> None:
        self.completed = (seq, dict(payload))

    # -- results ----------------------------------------------------------------------
    def portfolios(self) -> dict[str, Portfolio]:
        """The replayed Portfolio of each pool, by account."""
        return {account: pool.portfolio for account, pool in self.pools.items()}

    def set_anomaly_handler(self, handler: AnomalyHandler | None) -> None:
        """Send later anomalies to ``handler``."""
        self._on_anomaly = handler

    def kill_switch(self, *, rebuild: bool = False) -> EmergencyStop:
        """The kill switch rebuilt from the journal's kill-switch events (by restore);
        ``rebuild``: even if nothing changed (its anomalies are reported again)."""
        fresh = self._kill_restored == len(self._kill_records)
        if self._kill_switch is not None and fresh and not rebuild:
            return self._kill_switch
        self._kill_restored = len(self._kill_records)
        self._kill_switch = self._restore_kill_switch()
        return self._kill_switch

    def _restore_kill_switch(self) -> EmergencyStop:
        try:
            stop = EmergencyStop.restore(
                self._kill_records, clock=TimeWarp.virtual(0), publish=_discard
            )
        except RestoreFailed:
            # Keep every trip that can be read; each unreadable record is reported.
            stop = EmergencyStop(TimeWarp.virtual(0), _discard)
            for record in self._kill_records:
                try:
                    stop.replay([record])
                except RestoreFailed as exc:
                    self._anomaly(record.seq, "decode", str(exc))
        for anomaly in stop.anomalies:
            self._anomaly(None, "kill_switch", anomaly)
        return stop

    def state(self) -> ReplayState:
        """The derived state after every record applied so far."""
        stop = self.kill_switch()
        pools: dict[str, PoolState] = {}
        for account, pool in self.pools.items():
            portfolio = pool.portfolio
            pools[account] = PoolState(
                account=account,
                strategy=pool.strategy,
                engine=pool.engine,
                initial_cash=portfolio.initial_cash,
                cash=portfolio.cash,
                realized_pnl=portfolio.realized_pnl,
                fees=portfolio.fees,
                fills=portfolio.fills,
                trades=len(portfolio.closed_trades),
                transfers=portfolio.transfers,
                positions={
                    symbol: PositionState(
                        symbol=symbol, quantity=position.quantity, cost=position.cost
                    )
                    for symbol, position in sorted(portfolio.positions.items())
                },
            )
        open_orders = tuple(
            OrderState(
                client_order_id=order.client_order_id,
                strategy=order.strategy,
                account=order.account,
                symbol=order.symbol,
                side=order.side,
                status=order.status.value,
                filled_quantity=order.filled_quantity,
                fees=order.fees,
                venue_order_id=order.venue_order_id,
                submitted_seq=order.first_seq,
            )
            for order in self.orders.values()
            if TRANSITIONS[order.status]
        )
        return ReplayState(
            instrument=self.instrument,
            events=self.events,
            last_seq=self.last_seq,
            digest=self.digest,
            complete=self.completed is not None,
            pools=pools,
            orders=len(self.orders),
            open_orders=open_orders,
            trading_states=dict(sorted(self.trading_states.items())),
            kill_switches=stop.snapshot().tripped,
            breakers=dict(sorted(self.breakers.items())),
            stopped_strategies=dict(sorted(self.stopped.items())),
            execution_halted=self.execution_halted,
            anomalies=tuple(self.anomalies),
        )


_Handler = Callable[[JournalReplayer, int, Mapping[str, Any], JournalRecord], None]
_HANDLERS: dict[str, _Handler] = {
    "RunStarted": JournalReplayer._run_started,
    "RiskDecision": JournalReplayer._risk_decision,
    "OrderSubmitted": JournalReplayer._order_submitted,
    "OrderAdopted": JournalReplayer._order_adopted,
    "OrderAccepted": JournalReplayer._order_accepted,
    "OrderRejected": JournalReplayer._order_rejected,
    "OrderCanceled": JournalReplayer._order_canceled,
    "OrderFilled": JournalReplayer._order_filled,
    "FillReversed": JournalReplayer._fill_reversed,
    "TradingStateChanged": JournalReplayer._state_changed,
    "BreakerStateChanged": JournalReplayer._breaker,
    "StrategyStopped": JournalReplayer._stopped,
    "ExecutionHalted": JournalReplayer._halted,
    "ExecutionResumed": JournalReplayer._resumed,
    "ProfitAllocated": JournalReplayer._profit_allocated,
    "CapitalTransferred": JournalReplayer._capital_transferred,
    "RunCompleted": JournalReplayer._run_completed,
    **{name: JournalReplayer._kill_switch_event for name in sorted(_KILL_SWITCH_EVENTS)},
}


def _discard(_event: object) -> None:
    """Restoring publishes nothing."""


def reported_initial_capital(records: Iterable[JournalRecord]) -> int | None:
    """The total initial capital RunCompleted reports, if the journal has one."""
    capital = None
    for record in records:
        if record.type == "RunCompleted" and isinstance(record.payload, Mapping):
            value = record.payload.get("initial_capital")
            if isinstance(value, int) and value > 0:
                capital = value
    return capital


def reversed_trade_ids(records: Iterable[JournalRecord]) -> frozenset[str]:
    """The trade ids of every fill the journal reverses (``FillReversed``)."""
    return frozenset(
        str(record.payload["trade_id"])
        for record in records
        if record.type == "FillReversed" and isinstance(record.payload, Mapping)
    )


def replay(records: Iterable[JournalRecord]) -> ReplayState:
    """Rebuild the derived state from journal ``records`` (in sequence order).

    >>> state = replay(Journal("run.sqlite").records())  # doctest: +SKIP
    >>> state.pools["main"].cash, state.position("GOOG")  # doctest: +SKIP
    """
    records = list(records)
    replayer = JournalReplayer(
        initial_capital=reported_initial_capital(records),
        reversed_trade_ids=reversed_trade_ids(records),
    )
    for record in records:
        replayer.apply(record)
    return replayer.state()


# -- reading a journal file -----------------------------------------------------------------
def _sqlite_file(target: str) -> str | None:
    """The SQLite file a journal path or ``sqlite:///`` URL names (None for other URLs)."""
    if "://" not in target:
        return target
    parts = urlsplit(target)
    if parts.scheme.lower() != "sqlite":
        return None
    return parts.path[1:] if parts.path.startswith("/") else parts.path


def _read_all(journal: Journal) -> list[JournalRecord]:
    records: list[JournalRecord] = []
    start = 1
    while True:
        try:
            records.extend(journal.records(start))
            return records
        except JournalCorrupted as exc:
            # Keep the record's place (its stored bytes still count in the chain), with an
            # empty payload the replay reports, and read on past it.
            row = next(iter(journal.store.read(exc.seq)), None)
            if row is not None and row[0] == exc.seq:
                seq, ts, type_name, raw, chain = row
                records.append(JournalRecord(seq, ts, type_name, {}, chain, raw))
            start = exc.seq + 1


def read_journal(target: str | os.PathLike[str]) -> list[JournalRecord]:
    """Every record of the journal at ``target``: an SQLite path or a journal URL.

    A record whose payload does not decode keeps its place with an empty payload (the
    chain is still checked over its stored bytes). A missing file, or anything that is
    not a journal, raises :class:`JournalUnreadable`; a journal is never created here.
    """
    name = os.fspath(target)
    file = _sqlite_file(name)
    if file is not None and file != ":memory:" and not os.path.isfile(file):
        raise JournalUnreadable(name, "no such journal file")
    try:
        journal = Journal(name) if file == name else Journal.open(name)
    except sqlite3.DatabaseError as exc:
        raise JournalUnreadable(name, f"not a readable journal ({exc})") from None
    except Exception as exc:  # any driver's failure to open is the user's to fix
        raise JournalUnreadable(name, f"cannot open the journal ({exc})") from None
    try:
        return _read_all(journal)
    except sqlite3.DatabaseError as exc:
        raise JournalUnreadable(name, f"not a readable journal ({exc})") from None
    finally:
        journal.close()


def replay_journal(target: str | os.PathLike[str]) -> ReplayState:
    """:func:`replay` of the journal at ``target`` (see :func:`read_journal`)."""
    return replay(read_journal(target))
