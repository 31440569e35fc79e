"""Freqtrade-style protections fed hand-made trades and equity samples on a virtual TimeWarp.

The clock only stamps the inputs (a trade's exit time, an equity sample's time); the
protections never read it, so each test is a plain sequence of facts and lock checks.
"""

from __future__ import annotations

from fractions import Fraction

import msgspec
import pytest

from predator.core.clock import NS_PER_SECOND, TimeWarp
from predator.core.events import Event
from predator.portfolio.position import ClosedTrade
from predator.risk.protections import (
    CooldownPeriod,
    LowProfitLock,
    MaxDrawdownProtection,
    Protection,
    ProtectionLock,
    ProtectionLocked,
    Protections,
    StoplossGuard,
)

START_NS = 1_700_000_000_000_000_000
MINUTE = 60 * NS_PER_SECOND
HOUR = 60 * MINUTE


def closed_trade(
    clock: TimeWarp, pnl: int, *, symbol: str = "GOOG", held_ns: int = MINUTE
) -> ClosedTrade:
    """A long round trip of 10 units closing now with net ``pnl`` (fees 5)."""
    exit_ts = clock.now_ns()
    return ClosedTrade(
        symbol=symbol,
        size=10,
        entry_ts=exit_ts - held_ns,
        exit_ts=exit_ts,
        entry_price=10_000,
        exit_price=10_000 + (pnl + 5) // 10,
        gross_pnl=pnl + 5,
        fees=5,
        pnl=pnl,
    )


@pytest.fixture
def clock() -> TimeWarp:
    return TimeWarp.virtual(START_NS)


# -- MaxDrawdownProtection ---------------------------------------------------------------
def test_max_drawdown_locks_when_equity_falls_beyond_the_limit(clock: TimeWarp) -> None:
    guard = MaxDrawdownProtection(HOUR, Fraction(1, 10), 2 * HOUR)
    assert guard.on_equity(clock.now_ns(), 100_000) is None
    clock.advance(MINUTE)
    assert guard.on_equity(clock.now_ns(), 120_000) is None
    clock.advance(MINUTE)
    assert guard.on_equity(clock.now_ns(), 108_000) is None  # exactly 10%: not beyond
    clock.advance(MINUTE)
    lock = guard.on_equity(clock.now_ns(), 107_999)
    assert lock is not None
    assert lock.name == "max_drawdown"
    assert lock.since_ns == clock.now_ns()
    assert lock.until_ns == clock.now_ns() + 2 * HOUR
    assert "from peak 120000 to 107999 above 10.00% within 3600s" in lock.reason
    assert guard.lock(clock.now_ns()) == lock


def test_max_drawdown_peak_leaves_the_lookback_window(clock: TimeWarp) -> None:
    guard = MaxDrawdownProtection(HOUR, "0.10", HOUR)
    guard.on_equity(clock.now_ns(), 200_000)
    clock.advance(30 * MINUTE)
    guard.on_equity(clock.now_ns(), 100_000)
    assert guard.lock(clock.now_ns()) is not None  # 50% drawdown: locked
    # A fresh guard that only sees the slow decline: the old peak is an hour old.
    slow = MaxDrawdownProtection(HOUR, "0.10", HOUR)
    clock.advance(MINUTE)
    slow.on_equity(clock.now_ns(), 200_000)
    clock.advance(HOUR)
    slow.on_equity(clock.now_ns(), 190_000)  # 5% below a peak exactly one hour old: gone
    clock.advance(30 * MINUTE)
    assert slow.on_equity(clock.now_ns(), 175_000) is None  # 7.9% below 190_000
    assert slow.lock(clock.now_ns()) is None


def test_max_drawdown_lock_expires_and_the_peak_restarts(clock: TimeWarp) -> None:
    guard = MaxDrawdownProtection(24 * HOUR, Fraction(1, 10), HOUR)
    guard.on_equity(clock.now_ns(), 100_000)
    clock.advance(MINUTE)
    assert guard.on_equity(clock.now_ns(), 80_000) is not None
    clock.advance(HOUR - 1)
    assert guard.lock(clock.now_ns()) is not None
    clock.advance(1)
    assert guard.lock(clock.now_ns()) is None
    # The 100_000 peak was consumed by the lock: 80_000 is the new reference.
    assert guard.on_equity(clock.now_ns(), 75_000) is None
    clock.advance(MINUTE)
    assert guard.on_equity(clock.now_ns(), 71_999) is not None  # 10.001% below 80_000


def test_max_drawdown_rejects_time_going_backwards(clock: TimeWarp) -> None:
    guard = MaxDrawdownProtection(HOUR, "0.1", HOUR)
    guard.on_equity(clock.now_ns(), 1)
    with pytest.raises(ValueError, match="older"):
        guard.on_equity(clock.now_ns() - 1, 1)


def test_max_drawdown_ignores_windows_without_a_positive_peak(clock: TimeWarp) -> None:
    guard = MaxDrawdownProtection(HOUR, "0.1", HOUR)
    assert guard.on_equity(clock.now_ns(), 0) is None
    assert guard.on_equity(clock.now_ns(), -50) is None


@pytest.mark.parametrize("limit", ["0", "1.5", "-0.1"])
def test_max_drawdown_limit_must_be_a_fraction_of_the_peak(limit: str) -> None:
    with pytest.raises(ValueError, match="max_drawdown"):
        MaxDrawdownProtection(HOUR, limit, HOUR)


# -- StoplossGuard ------------------------------------------------------------------------
def test_stoploss_guard_locks_after_the_trade_limit_of_stop_outs(clock: TimeWarp) -> None:
    guard = StoplossGuard(lookback_ns=HOUR, trade_limit=3, stop_duration_ns=30 * MINUTE)
    assert guard.on_trade_closed(closed_trade(clock, -100), stopped_out=True) is None
    clock.advance(10 * MINUTE)
    assert guard.on_trade_closed(closed_trade(clock, -100), stopped_out=False) is None
    assert guard.on_trade_closed(closed_trade(clock, 300)) is None
    assert guard.on_trade_closed(closed_trade(clock, -100), stopped_out=True) is None
    clock.advance(10 * MINUTE)
    lock = guard.on_trade_closed(closed_trade(clock, -100, symbol="MSFT"), stopped_out=True)
    assert lock is not None
    assert lock.reason == "3 stop-outs within 3600s, last MSFT"
    assert lock.until_ns == clock.now_ns() + 30 * MINUTE
    clock.advance(30 * MINUTE)
    assert guard.lock(clock.now_ns()) is None


def test_stoploss_guard_forgets_stop_outs_older_than_the_lookback(clock: TimeWarp) -> None:
    guard = StoplossGuard(lookback_ns=HOUR, trade_limit=2, stop_duration_ns=HOUR)
    guard.on_trade_closed(closed_trade(clock, -100), stopped_out=True)
    clock.advance(HOUR)
    assert guard.on_trade_closed(closed_trade(clock, -100), stopped_out=True) is None
    clock.advance(MINUTE)
    assert guard.on_trade_closed(closed_trade(clock, -100), stopped_out=True) is not None


def test_stoploss_guard_does_not_retrip_on_the_stop_outs_it_consumed(clock: TimeWarp) -> None:
    guard = StoplossGuard(lookback_ns=24 * HOUR, trade_limit=2, stop_duration_ns=HOUR)
    guard.on_trade_closed(closed_trade(clock, -1), stopped_out=True)
    assert guard.on_trade_closed(closed_trade(clock, -1), stopped_out=True) is not None
    clock.advance(HOUR)
    assert guard.on_trade_closed(closed_trade(clock, -1), stopped_out=True) is None
    assert guard.lock(clock.now_ns()) is None


# -- CooldownPeriod ----------------------------------------------------------------------
def test_cooldown_locks_after_a_losing_trade_only(clock: TimeWarp) -> None:
    cooldown = CooldownPeriod(stop_duration_ns=15 * MINUTE)
    assert cooldown.on_trade_closed(closed_trade(clock, 0)) is None
    assert cooldown.on_trade_closed(closed_trade(clock, 500)) is None
    assert cooldown.lock(clock.now_ns()) is None
    lock = cooldown.on_trade_closed(closed_trade(clock, -1))
    assert lock is not None
    assert lock.reason == "losing trade on GOOG (pnl -1): cooling down 900s"
    clock.advance(15 * MINUTE - 1)
    assert cooldown.lock(clock.now_ns()) == lock
    clock.advance(1)
    assert cooldown.lock(clock.now_ns()) is None


def test_cooldown_restarts_on_a_loss_during_the_cooldown(clock: TimeWarp) -> None:
    cooldown = CooldownPeriod(stop_duration_ns=15 * MINUTE)
    cooldown.on_trade_closed(closed_trade(clock, -1))
    clock.advance(10 * MINUTE)
    lock = cooldown.on_trade_closed(closed_trade(clock, -1))
    assert lock is not None
    assert lock.until_ns == clock.now_ns() + 15 * MINUTE


# -- LowProfitLock -----------------------------------------------------------------------
def test_low_profit_lock_needs_the_trade_limit(clock: TimeWarp) -> None:
    guard = LowProfitLock(
        lookback_ns=6 * HOUR, trade_limit=3, required_profit=0, stop_duration_ns=HOUR
    )
    assert guard.on_trade_closed(closed_trade(clock, -500)) is None
    clock.advance(HOUR)
    assert guard.on_trade_closed(closed_trade(clock, -500)) is None
    clock.advance(HOUR)
    lock = guard.on_trade_closed(closed_trade(clock, 900))
    assert lock is not None
    assert lock.reason == "3 trades within 21600s made -100, below the required 0"


def test_low_profit_lock_passes_when_profit_reaches_the_requirement(clock: TimeWarp) -> None:
    guard = LowProfitLock(
        lookback_ns=HOUR, trade_limit=2, required_profit=100, stop_duration_ns=HOUR
    )
    guard.on_trade_closed(closed_trade(clock, 40))
    assert guard.on_trade_closed(closed_trade(clock, 60)) is None  # exactly 100
    assert guard.on_trade_closed(closed_trade(clock, -1)) is not None  # 99 < 100


def test_low_profit_lock_only_sums_trades_inside_the_lookback(clock: TimeWarp) -> None:
    guard = LowProfitLock(lookback_ns=HOUR, trade_limit=2, required_profit=0, stop_duration_ns=HOUR)
    guard.on_trade_closed(closed_trade(clock, -1_000))
    clock.advance(HOUR)
    guard.on_trade_closed(closed_trade(clock, 10))
    clock.advance(MINUTE)
    assert guard.on_trade_closed(closed_trade(clock, 10)) is None  # -1000 left the window


# -- Protections ---------------------------------------------------------------------------
def test_protections_publish_each_new_lock_and_report_the_longest(clock: TimeWarp) -> None:
    events: list[Event] = []
    protections = Protections(
        [
            CooldownPeriod(10 * MINUTE),
            StoplossGuard(HOUR, trade_limit=2, stop_duration_ns=2 * HOUR),
        ],
        publish=events.append,
    )
    protections.append(MaxDrawdownProtection(HOUR, "0.2", HOUR))
    assert len(protections) == 3
    assert protections.locked(clock.now_ns()) is None

    started = protections.on_trade_closed(closed_trade(clock, -10), stopped_out=True)
    assert [lock.name for lock in started] == ["cooldown_period"]
    clock.advance(MINUTE)
    started = protections.on_trade_closed(closed_trade(clock, -10), stopped_out=True)
    assert [lock.name for lock in started] == ["cooldown_period", "stoploss_guard"]

    locked = protections.locked(clock.now_ns())
    assert locked is not None and locked.name == "stoploss_guard"
    assert [lock.name for lock in protections.locks(clock.now_ns())] == [
        "cooldown_period",
        "stoploss_guard",
    ]
    assert [type(e) for e in events] == [ProtectionLocked] * 3
    last = events[-1]
    assert isinstance(last, ProtectionLocked)
    assert last.ts == clock.now_ns()
    assert last.name == "stoploss_guard"
    assert last.until_ns == clock.now_ns() + 2 * HOUR

    clock.advance(10 * MINUTE)
    assert [lock.name for lock in protections.locks(clock.now_ns())] == ["stoploss_guard"]
    clock.advance(2 * HOUR)
    assert protections.locked(clock.now_ns()) is None


def test_protections_feed_equity_to_every_protection(clock: TimeWarp) -> None:
    events: list[Event] = []
    protections = Protections(
        [CooldownPeriod(MINUTE), MaxDrawdownProtection(HOUR, "0.2", HOUR)], publish=events.append
    )
    assert protections.on_equity(clock.now_ns(), 1_000) == []
    clock.advance(MINUTE)
    started = protections.on_equity(clock.now_ns(), 700)
    assert [lock.name for lock in started] == ["max_drawdown"]
    assert len(events) == 1
    assert [p.name for p in protections] == ["cooldown_period", "max_drawdown"]


def test_a_custom_protection_plugs_into_the_container(clock: TimeWarp) -> None:
    class NoTradingAfterBigWin(Protection):
        def on_trade_closed(
            self, trade: ClosedTrade, stopped_out: bool = False
        ) -> ProtectionLock | None:
            if trade.pnl > 10_000:
                return self._start_lock(trade.exit_ts, "big win: take a breath")
            return None

    protections = Protections([NoTradingAfterBigWin(HOUR, name="big_win")])
    protections.on_trade_closed(closed_trade(clock, 20_000))
    locked = protections.locked(clock.now_ns())
    assert locked is not None and locked.reason == "big win: take a breath"


def test_protection_locked_round_trips_through_msgspec(clock: TimeWarp) -> None:
    events: list[Event] = []
    Protections([CooldownPeriod(MINUTE)], publish=events.append).on_trade_closed(
        closed_trade(clock, -1)
    )
    event = events[0]
    assert msgspec.json.decode(msgspec.json.encode(event), type=ProtectionLocked) == event


@pytest.mark.parametrize(
    "build",
    [
        lambda: CooldownPeriod(0),
        lambda: StoplossGuard(0, 1, 1),
        lambda: StoplossGuard(1, 0, 1),
        lambda: LowProfitLock(1, 0, 0, 1),
        lambda: MaxDrawdownProtection(0, "0.1", 1),
    ],
)
def test_protections_reject_non_positive_durations_and_limits(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match="must be positive"):
        build()
