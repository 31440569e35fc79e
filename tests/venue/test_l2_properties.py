"""Property tests of the L2 paper exchange: random streams of submits, cancels, amends and
heartbeats interleaved with a real stretch of the Binance BTCUSDT spot capture.

Whatever the stream: no order fills more than ordered, no size goes negative,
``filled + leaves + canceled == quantity`` for every order, every fee is the commission
model's exact fee, the venue account is the exact sum of its fills, and the same inputs
(and seed) give the same reports, byte for byte.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_l2_exchange import JOIN_TS, LOT, index_at
from test_l2_harness import BTC, TICK, L2Harness, spot_events

from predator.core.rng import RngStreams
from predator.market.l2 import BookSnapshot
from predator.venue import (
    CommissionModel,
    LatencyModel,
    MarketData,
    OrderType,
    ProbQueue,
    RiskAverseQueue,
    Side,
    TimeInForce,
    VenueOrderFilled,
    power_queue,
)

WINDOW = 1500  # real events after the join point (about 12 s of trading)
MS = 1_000_000
COMMISSION = CommissionModel(BTC, rate="0.001", maker_rate="-0.0001", fixed="0.01")


@cache
def window() -> tuple[MarketData, ...]:
    """The venue's real book at the join point as a snapshot, then the next real events."""
    venue = L2Harness()
    start = index_at(JOIN_TS) + 1
    venue.play_to(start)
    book = venue.book
    snapshot = BookSnapshot(
        ts=spot_events()[start - 1].ts,
        symbol=BTC.symbol,
        last_update_id=book.last_update_id,
        bids=tuple(book.bids(5000)),
        asks=tuple(book.asks(5000)),
    )
    return (snapshot, *spot_events()[start : start + WINDOW])


sides = st.sampled_from([Side.BUY, Side.SELL])
submits = st.fixed_dictionaries(
    {
        "op": st.just("submit"),
        "kind": st.sampled_from([*OrderType, OrderType.LIMIT, OrderType.LIMIT]),
        "side": sides,
        # steps of 0.50 USDT from our side's best price, mostly away from the market (< 0)
        "offset": st.integers(-10, 0) | st.integers(-20, 20),
        # mostly small, sometimes up to 0.4 BTC: deep enough to walk many levels
        "lots": st.integers(1, 500) | st.integers(1, 40_000),
        "tif": st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, "gtd"]),
        "post_only": st.sampled_from([False, False, True]),
        "reduce_only": st.sampled_from([False, False, False, True]),
    }
)
cancels = st.fixed_dictionaries({"op": st.just("cancel"), "target": st.integers(0, 30)})
amends = st.fixed_dictionaries(
    {
        "op": st.just("amend"),
        "target": st.integers(0, 30),
        "lots": st.none() | st.integers(1, 500),
        "offset": st.none() | st.integers(-20, 20),
    }
)
heartbeats = st.fixed_dictionaries(
    {"op": st.just("heartbeat"), "timeout_ms": st.sampled_from([None, 0, 300, 2000])}
)
positions = st.integers(1, WINDOW)  # the op comes after this many events
streams = st.tuples(
    st.lists(st.tuples(positions, submits), min_size=3, max_size=30),
    st.lists(st.tuples(positions, st.one_of(cancels, amends, heartbeats)), max_size=25),
).map(lambda lists: sorted(lists[0] + lists[1], key=lambda item: item[0]))


def run(
    ops: list[tuple[int, dict[str, Any]]], seed: int | None, cash: str, prob: bool
) -> L2Harness:
    latency = None if seed is None else LatencyModel.seeded(RngStreams(seed), median_ns=20 * MS)
    venue = L2Harness(
        events=window(),
        cash=cash,
        commission=COMMISSION,
        latency=latency,
        queue_model=ProbQueue(power_queue(2)) if prob else RiskAverseQueue(),
    )
    sent: list[str] = []
    for position, op in ops:
        venue.play_to(position)
        act(venue, op, sent)
        check_orders(venue)
    venue.play_to(len(venue.events))
    venue.exchange.finalize()
    return venue


def act(venue: L2Harness, op: dict[str, Any], sent: list[str]) -> None:
    book = venue.book
    if not book.valid:
        return
    bid, ask = book.best_bid()[0], book.best_ask()[0]
    if op["op"] == "submit":
        side = op["side"]
        touch = bid if side is Side.BUY else ask
        price = max(
            touch + side * 50 * TICK * op["offset"], TICK
        )  # offset < 0: away from the market
        kind = op["kind"]
        fields: dict[str, Any] = {"side": side, "order_type": kind, "quantity": op["lots"] * LOT}
        if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            fields["limit_price"] = price
            fields["post_only"] = op["post_only"]
        if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
            fields["stop_price"] = max(touch - side * 50 * TICK * abs(op["offset"]), TICK)
        if op["tif"] == "gtd":
            fields["tif"] = TimeInForce.GTD
            fields["expire_at"] = venue.clock.now_ns() + 500 * MS
        else:
            fields["tif"] = op["tif"]
        fields["reduce_only"] = op["reduce_only"]
        sent.append(venue.submit(**fields).client_order_id)
    open_ids = [r.client_order_id for r in venue.exchange.open_orders()] or sent
    if op["op"] == "cancel" and open_ids:
        venue.exchange.cancel(open_ids[op["target"] % len(open_ids)])
    elif op["op"] == "amend" and open_ids:
        target = open_ids[op["target"] % len(open_ids)]
        quantity = None if op["lots"] is None else op["lots"] * LOT
        price = None if op["offset"] is None else bid + 50 * TICK * op["offset"]
        venue.exchange.amend(target, quantity=quantity, limit_price=price)
    elif op["op"] == "heartbeat":
        venue.exchange.heartbeat("main", timeout_ns=op["timeout_ms"] and op["timeout_ms"] * MS)


def check_orders(venue: L2Harness) -> None:
    for state in venue.exchange.order_states():
        assert state.filled + state.leaves + state.canceled == state.quantity
        assert 0 <= state.filled <= state.quantity
        assert state.leaves >= 0 and state.canceled >= 0
        assert state.queue_ahead is None or state.queue_ahead >= 0


def check_books(venue: L2Harness) -> None:
    check_orders(venue)
    exchange = venue.exchange
    fills = exchange.fills_since(0)
    by_order: dict[str, list[VenueOrderFilled]] = defaultdict(list)
    for fill in fills:
        by_order[fill.client_order_id].append(fill)
    for state in exchange.order_states():
        mine = by_order.pop(state.client_order_id, [])
        assert sum(f.quantity for f in mine) == state.filled
        for n, fill in enumerate(mine):
            assert fill.quantity > 0 and fill.leaves_quantity >= 0
            expected = COMMISSION.fee(
                fill.price, fill.quantity, first_fill=n == 0, liquidity=fill.liquidity
            )
            assert fill.fee == expected
    assert by_order == {}  # every fill belongs to an accepted order
    notional = sum(f.side * f.quantity * f.price for f in fills) * BTC.notional_factor
    assert exchange.cash == venue.initial_cash - notional - sum(f.fee for f in fills)
    assert exchange.positions[BTC.symbol] == sum(f.side * f.quantity for f in fills)
    assert [f.trade_id for f in fills] == [f"T{n}" for n in range(1, len(fills) + 1)]
    assert venue.fills() == fills  # every fill reached the client, in trade order


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=streams,
    seed=st.none() | st.integers(0, 3),
    cash=st.sampled_from(["2000", "10000000"]),
    prob=st.booleans(),
)
def test_random_order_streams_keep_every_order_and_the_account_exact(
    ops: list[tuple[int, dict[str, Any]]], seed: int | None, cash: str, prob: bool
) -> None:
    venue = run(ops, seed, cash, prob)
    check_books(venue)
    for report in venue.reports:
        event(type(report).__name__ + getattr(report, "reason", ""))
        if isinstance(report, VenueOrderFilled):
            event(f"fill {report.liquidity.value}")
    again = run(ops, seed, cash, prob)
    assert msgspec.json.encode(again.reports) == msgspec.json.encode(venue.reports)
    assert again.delivered_at == venue.delivered_at


def test_the_property_window_exercises_fills_of_every_kind() -> None:
    # Guards the generator above: a plain stream does fill, take and rest on this data.
    ops = [
        (10, {"op": "submit", "kind": OrderType.MARKET, "side": Side.BUY, "offset": 0,
              "lots": 300, "tif": TimeInForce.GTC, "post_only": False, "reduce_only": False}),
        (20, {"op": "submit", "kind": OrderType.LIMIT, "side": Side.BUY, "offset": 0,
              "lots": 100, "tif": TimeInForce.GTC, "post_only": True, "reduce_only": False}),
        (30, {"op": "submit", "kind": OrderType.LIMIT, "side": Side.SELL, "offset": 0,
              "lots": 100, "tif": TimeInForce.GTC, "post_only": False, "reduce_only": True}),
    ]  # fmt: skip
    venue = run(ops, None, "10000000", False)
    check_books(venue)
    liquidity = {f.liquidity.value for f in venue.fills()}
    assert liquidity == {"maker", "taker"}
