"""The ConsistencyChecker on a real kernel (sma_cross on GOOG daily): every broken
invariant is journaled, halts everything and stops the run."""

from __future__ import annotations

from functools import cache

import pytest

from predator.core.events import Event
from predator.execution.order import OrderFilled
from predator.ledger import Journal
from predator.market import BarFeed, load_bars
from predator.node import BacktestConfig
from predator.node.backtest import _announce_run, _build_kernel
from predator.node.kernel import Kernel
from predator.testkit import shared_data_dir
from predator.validation.consistency import InvariantViolated, StateInconsistent
from predator.venue.orders import Liquidity, Side


@cache
def goog() -> BarFeed:
    return load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")


def running_kernel(bars: int = 300) -> tuple[Kernel, list[Event]]:
    config = BacktestConfig(params={"fast": 10, "slow": 30}, commission="0.002")
    kernel = _build_kernel(goog(), config, Journal(None))
    events: list[Event] = []
    kernel.bus.subscribe(Event, events.append)
    _announce_run(kernel, goog(), config, kernel.journal)
    for runner in kernel.runners.values():
        runner.start()
    for bar in list(goog())[:bars]:
        kernel.clock.set(bar.ts)
        kernel.bus.publish(bar)
    return kernel, events


def a_fill(kernel: Kernel, *, trade_id: str, client_order_id: str) -> OrderFilled:
    return OrderFilled(
        ts=kernel.clock.now_ns(),
        client_order_id=client_order_id,
        strategy="sma_cross",
        trade_id=trade_id,
        symbol="GOOG",
        side=Side.BUY,
        price=20_000,
        quantity=1,
        fee=0,
        liquidity=Liquidity.TAKER,
        leaves_quantity=0,
    )


def test_a_clean_run_checks_every_order_event_and_finds_nothing() -> None:
    kernel, events = running_kernel()
    assert kernel.consistency is not None
    assert kernel.consistency.checks > 20
    assert kernel.consistency.violations == []
    assert not any(isinstance(e, InvariantViolated) for e in events)


def test_a_fill_of_an_order_never_sent_halts_and_stops_the_run() -> None:
    kernel, events = running_kernel()
    with pytest.raises(StateInconsistent, match="fill_has_order"):
        kernel.bus.publish(a_fill(kernel, trade_id="T-ghost", client_order_id="nobody-1"))
    (violation,) = [e for e in events if isinstance(e, InvariantViolated)]
    assert violation.invariant == "fill_has_order"
    trip = kernel.kill_switch.trip_of("global")
    assert trip is not None and trip.trigger == "invariant_violation"
    assert kernel.journal.last_seq >= 1  # the violation itself is journaled
    assert any(r.type == "InvariantViolated" for r in kernel.journal.records())


def test_a_venue_trade_applied_twice_is_caught() -> None:
    kernel, _events = running_kernel()
    order = next(o for o in kernel.execution.orders.values() if o.trade_ids)
    trade = sorted(order.trade_ids)[0]
    with pytest.raises(StateInconsistent, match="fill_applied_once"):
        kernel.bus.publish(a_fill(kernel, trade_id=trade, client_order_id=order.client_order_id))


def test_a_position_that_is_not_the_sum_of_its_fills_is_caught() -> None:
    kernel, _events = running_kernel()
    assert kernel.consistency is not None
    # The checker's own count of the pool's position drifts from the fills it heard
    # (what a fill applied behind its back would look like):
    key = ("main", "GOOG")
    kernel.consistency._positions[key] = kernel.consistency._positions.get(key, 0) + 5
    order = next(iter(kernel.execution.orders.values()))
    with pytest.raises(StateInconsistent, match="position_is_sum_of_fills"):
        kernel.bus.publish(a_fill(kernel, trade_id="T-new", client_order_id=order.client_order_id))
