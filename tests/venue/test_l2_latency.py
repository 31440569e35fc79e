"""Specs for latency in the L2 paper exchange, on the real Binance BTCUSDT spot capture:
requests reach the venue later, reports come back later, deterministically per seed."""

from __future__ import annotations

from itertools import pairwise

from test_l2_exchange import JOIN_PRICE, JOIN_TS, LOT, MILLI, index_at, joined_best_bid
from test_l2_harness import L2Harness, px, spot_events

from predator.core.rng import RngStreams
from predator.market.l2 import QuoteTick, TradeTick
from predator.venue import (
    LatencyModel,
    OrderType,
    RecordedDelay,
    Side,
    VenueOrderFilled,
)

MS = 1_000_000


def market_round_trips(latency: LatencyModel | None) -> L2Harness:
    """Ten market buys, each sold back, at quotes spread over four minutes of data."""
    venue = L2Harness(latency=latency)
    start = index_at(JOIN_TS)
    quotes = [i for i in range(start, len(venue.events)) if isinstance(venue.events[i], QuoteTick)]
    for i in quotes[:: len(quotes) // 10][:10]:
        venue.play_to(i + 1)
        venue.submit(side=Side.BUY, quantity=LOT)
        venue.play(50)
        venue.submit(side=Side.SELL, quantity=LOT)
    venue.play_to(len(venue.events))
    venue.exchange.finalize()
    return venue


def fill_times(venue: L2Harness) -> list[int]:
    return [f.ts for f in venue.fills()]


def seeded(seed: int) -> LatencyModel:
    return LatencyModel.seeded(RngStreams(seed), median_ns=30 * MS, sigma=0.5, floor_ns=2 * MS)


def test_zero_latency_fills_a_market_order_at_the_instant_it_is_sent() -> None:
    venue = market_round_trips(None)
    accepted_at = [r.ts for r in venue.accepted()]
    assert fill_times(venue) == accepted_at and len(accepted_at) == 20
    assert venue.delivered_at == [r.ts for r in venue.reports]  # nothing in flight


def test_latency_moves_fills_later_deterministically_for_a_seed() -> None:
    instant = fill_times(market_round_trips(None))
    first, again, other = (fill_times(market_round_trips(seeded(s))) for s in (7, 7, 8))

    assert first == again  # same seed, same fill times
    assert first != other  # another seed, other delays
    assert len(first) == len(instant) == 20
    assert all(late >= now + 2 * MS for late, now in zip(first, instant, strict=True))


def test_reports_reach_the_client_after_the_response_latency_and_in_order() -> None:
    venue = market_round_trips(LatencyModel.constant(5 * MS, 40 * MS))
    assert all(d >= r.ts + 40 * MS for d, r in zip(venue.delivered_at, venue.reports, strict=True))
    assert all(a <= b for a, b in pairwise(venue.delivered_at))
    fills = venue.fills()
    assert len(fills) == 20


def test_entry_latency_puts_a_limit_order_behind_later_arrivals_and_fills_it_later() -> None:
    def fill(latency: LatencyModel | None) -> VenueOrderFilled:
        venue = L2Harness(latency=latency)
        joined_best_bid(venue)
        while not venue.fills():
            venue.step()
        return venue.fills()[0]

    instant, late = fill(None), fill(LatencyModel.constant(300 * MS, 0))
    assert instant.price == late.price == JOIN_PRICE
    assert late.ts > instant.ts


def test_latency_replayed_from_the_captures_stamps_is_deterministic() -> None:
    trades = [e for e in spot_events() if isinstance(e, TradeTick)]
    delay = RecordedDelay.from_stamps(((t.exchange_ts, t.ts) for t in trades), base_ns=MS)
    assert len(delay) == len(trades)
    jitter = sorted(delay.sample(t.exchange_ts) for t in trades)
    assert jitter[0] == MS and jitter[-1] > jitter[len(jitter) // 2] > MS

    def run() -> list[int]:
        venue = market_round_trips(LatencyModel(entry=delay, response=delay))
        return fill_times(venue) + venue.delivered_at

    assert run() == run()


def test_an_order_on_its_way_can_still_be_cancelled_before_it_arrives() -> None:
    venue = L2Harness(latency=LatencyModel.constant(50 * MS, 0))
    venue.play_to(index_at(JOIN_TS) + 1)
    order = venue.submit(
        side=Side.BUY, order_type=OrderType.LIMIT, limit_price=px("61000"), quantity=MILLI
    )
    assert venue.reports == []  # still on the wire
    assert venue.exchange.cancel(order.client_order_id) is True
    venue.play_until(JOIN_TS + 200 * MS)
    assert [type(r).__name__ for r in venue.reports] == ["VenueOrderAccepted", "VenueOrderCanceled"]
