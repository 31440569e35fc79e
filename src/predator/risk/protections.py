"""Protections in the style of Freqtrade's: pause new entries after a bad stretch of trading.

Each protection watches closed trades or equity samples and, when its rule trips, locks
trading until a time; ``Protections`` asks all of them at once and publishes each new lock.
Clock-free: time comes from the trades' exit times and the equity samples' timestamps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from fractions import Fraction

import msgspec

from predator.core.events import Event
from predator.core.numbers import format_seconds, format_units
from predator.portfolio.position import ClosedTrade

__all__ = [
    "CooldownPeriod",
    "LowProfitLock",
    "MaxDrawdownProtection",
    "Protection",
    "ProtectionLock",
    "ProtectionLocked",
    "Protections",
    "StoplossGuard",
]


class ProtectionLock(msgspec.Struct, frozen=True, kw_only=True):
    """No new entries from ``since_ns`` until ``until_ns`` (exclusive), because ``reason``."""

    name: str
    reason: str
    since_ns: int
    until_ns: int

    def active(self, now_ns: int) -> bool:
        """True while the lock holds at ``now_ns``."""
        return now_ns < self.until_ns


class ProtectionLocked(Event, frozen=True, kw_only=True):
    """Protection ``name`` locked trading until ``until_ns``; ``ts`` is when the lock began."""

    name: str
    reason: str
    until_ns: int


class Protection:
    """Base of every protection: feed it trades and equity, ask it for its lock.

    Both feeds return the lock they started, if any. When a rule trips, the evidence that
    tripped it (the trades, the equity peak) is consumed, so an expired lock does not trip
    again on the same old trades; a rule that trips again while locked extends the lock.
    """

    money_precision: int | None = None
    """Decimals of the money unit, so reasons show amounts (set by :class:`Protections`)."""

    def _money(self, units: int) -> str:
        return format_units(units, self.money_precision)

    def __init__(self, stop_duration_ns: int, *, name: str) -> None:
        _require_positive("stop_duration_ns", stop_duration_ns)
        self.name = name
        self.stop_duration_ns = stop_duration_ns
        self._lock: ProtectionLock | None = None

    def on_trade_closed(
        self, trade: ClosedTrade, stopped_out: bool = False
    ) -> ProtectionLock | None:
        """A trade closed (``stopped_out``: by its stop loss); the lock it started, if any."""
        return None

    def on_equity(self, ts: int, equity: int) -> ProtectionLock | None:
        """Account equity (money units) at ``ts``; the lock it started, if any."""
        return None

    def lock(self, now_ns: int) -> ProtectionLock | None:
        """The lock holding at ``now_ns``, or ``None``."""
        lock = self._lock
        if lock is not None and lock.active(now_ns):
            return lock
        return None

    def _start_lock(self, since_ns: int, reason: str) -> ProtectionLock:
        until_ns = since_ns + self.stop_duration_ns
        if self._lock is not None:
            until_ns = max(until_ns, self._lock.until_ns)
        self._lock = ProtectionLock(
            name=self.name, reason=reason, since_ns=since_ns, until_ns=until_ns
        )
        return self._lock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MaxDrawdownProtection(Protection):
    """Lock when equity falls more than ``max_drawdown`` below its peak of the last ``lookback_ns``.

    The drawdown is ``(peak - equity) / peak``, exact, and trips when *strictly* above the
    limit. A window whose peak is not positive has no drawdown. After a lock the peak
    restarts from the equity that tripped it.
    """

    def __init__(
        self,
        lookback_ns: int,
        max_drawdown: Fraction | Decimal | str,
        stop_duration_ns: int,
        *,
        name: str = "max_drawdown",
    ) -> None:
        super().__init__(stop_duration_ns, name=name)
        _require_positive("lookback_ns", lookback_ns)
        limit = Fraction(max_drawdown)
        if not 0 < limit <= 1:
            raise ValueError(f"max_drawdown must be in (0, 1], got {max_drawdown!r}")
        self.lookback_ns = lookback_ns
        self.max_drawdown = limit
        # Samples with strictly decreasing equity: the front is the window's peak.
        self._peaks: deque[tuple[int, int]] = deque()
        self._last_ts: int | None = None

    def on_equity(self, ts: int, equity: int) -> ProtectionLock | None:
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError(f"equity sample at {ts} is older than the last one at {self._last_ts}")
        self._last_ts = ts
        peaks = self._peaks
        while peaks and peaks[-1][1] <= equity:
            peaks.pop()
        peaks.append((ts, equity))
        cutoff = ts - self.lookback_ns
        while peaks[0][0] <= cutoff:
            peaks.popleft()
        peak = peaks[0][1]
        if peak <= 0:
            return None
        drawdown = Fraction(peak - equity, peak)
        if drawdown <= self.max_drawdown:
            return None
        peaks.clear()
        peaks.append((ts, equity))
        return self._start_lock(
            ts,
            f"drawdown {_percent(drawdown)} from peak {self._money(peak)} to"
            f" {self._money(equity)} above "
            f"{_percent(self.max_drawdown)} within {format_seconds(self.lookback_ns)}",
        )


class StoplossGuard(Protection):
    """Lock after ``trade_limit`` stop-outs within ``lookback_ns``."""

    def __init__(
        self,
        lookback_ns: int,
        trade_limit: int,
        stop_duration_ns: int,
        *,
        name: str = "stoploss_guard",
    ) -> None:
        super().__init__(stop_duration_ns, name=name)
        _require_positive("lookback_ns", lookback_ns)
        _require_positive("trade_limit", trade_limit)
        self.lookback_ns = lookback_ns
        self.trade_limit = trade_limit
        self._stops: deque[int] = deque()  # exit times of stop-outs

    def on_trade_closed(
        self, trade: ClosedTrade, stopped_out: bool = False
    ) -> ProtectionLock | None:
        if not stopped_out:
            return None
        now = trade.exit_ts
        self._stops.append(now)
        count = _count_in_window(self._stops, now - self.lookback_ns)
        if count < self.trade_limit:
            return None
        self._stops.clear()
        return self._start_lock(
            now, f"{count} stop-outs within {format_seconds(self.lookback_ns)}, last {trade.symbol}"
        )


class CooldownPeriod(Protection):
    """Lock for ``stop_duration_ns`` after every losing trade (``pnl < 0``)."""

    def __init__(self, stop_duration_ns: int, *, name: str = "cooldown_period") -> None:
        super().__init__(stop_duration_ns, name=name)

    def on_trade_closed(
        self, trade: ClosedTrade, stopped_out: bool = False
    ) -> ProtectionLock | None:
        if trade.pnl >= 0:
            return None
        return self._start_lock(
            trade.exit_ts,
            f"losing trade on {trade.symbol} (pnl {self._money(trade.pnl)}): "
            f"cooling down {format_seconds(self.stop_duration_ns)}",
        )


class LowProfitLock(Protection):
    """Lock when at least ``trade_limit`` trades closed within ``lookback_ns`` sum below
    ``required_profit`` (money units; may be zero or negative)."""

    def __init__(
        self,
        lookback_ns: int,
        trade_limit: int,
        required_profit: int,
        stop_duration_ns: int,
        *,
        name: str = "low_profit_lock",
    ) -> None:
        super().__init__(stop_duration_ns, name=name)
        _require_positive("lookback_ns", lookback_ns)
        _require_positive("trade_limit", trade_limit)
        self.lookback_ns = lookback_ns
        self.trade_limit = trade_limit
        self.required_profit = required_profit
        self._trades: deque[tuple[int, int]] = deque()  # (exit_ts, pnl)

    def on_trade_closed(
        self, trade: ClosedTrade, stopped_out: bool = False
    ) -> ProtectionLock | None:
        now = trade.exit_ts
        self._trades.append((now, trade.pnl))
        cutoff = now - self.lookback_ns
        while self._trades and self._trades[0][0] <= cutoff:
            self._trades.popleft()
        recent = [pnl for ts, pnl in self._trades if ts > cutoff]
        if len(recent) < self.trade_limit:
            return None
        profit = sum(recent)
        if profit >= self.required_profit:
            return None
        self._trades.clear()
        return self._start_lock(
            now,
            f"{len(recent)} trades within {format_seconds(self.lookback_ns)} made"
            f" {self._money(profit)}, below the required {self._money(self.required_profit)}",
        )


class Protections:
    """The protections of one scope, asked together; publishes a ``ProtectionLocked`` per lock.

    >>> protections = Protections([CooldownPeriod(60 * NS_PER_SECOND)])
    >>> protections.locked(0) is None
    True
    """

    def __init__(
        self,
        protections: Iterable[Protection] = (),
        *,
        publish: Callable[[Event], None] | None = None,
        money_precision: int | None = None,
    ) -> None:
        self.items: list[Protection] = list(protections)
        self._publish = publish
        if money_precision is not None:
            for protection in self.items:
                protection.money_precision = money_precision

    def append(self, protection: Protection) -> None:
        """Add ``protection`` to the ones asked."""
        self.items.append(protection)

    def __iter__(self) -> Iterator[Protection]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def on_trade_closed(
        self, trade: ClosedTrade, stopped_out: bool = False
    ) -> list[ProtectionLock]:
        """Feed a closed trade to every protection; the locks it started."""
        return self._started([p.on_trade_closed(trade, stopped_out) for p in self.items])

    def on_equity(self, ts: int, equity: int) -> list[ProtectionLock]:
        """Feed an equity sample to every protection; the locks it started."""
        return self._started([p.on_equity(ts, equity) for p in self.items])

    def locks(self, now_ns: int) -> list[ProtectionLock]:
        """Every lock holding at ``now_ns``, in protection order."""
        return [lock for p in self.items if (lock := p.lock(now_ns)) is not None]

    def locked(self, now_ns: int) -> ProtectionLock | None:
        """The holding lock that ends last (the first such on a tie), or ``None``."""
        longest: ProtectionLock | None = None
        for lock in self.locks(now_ns):
            if longest is None or lock.until_ns > longest.until_ns:
                longest = lock
        return longest

    def _started(self, results: list[ProtectionLock | None]) -> list[ProtectionLock]:
        started = [lock for lock in results if lock is not None]
        if self._publish is not None:
            for lock in started:
                self._publish(
                    ProtectionLocked(
                        ts=lock.since_ns, name=lock.name, reason=lock.reason, until_ns=lock.until_ns
                    )
                )
        return started


def _count_in_window(times: deque[int], cutoff: int) -> int:
    """Drop times at or before ``cutoff`` from the front; count those after it."""
    while times and times[0] <= cutoff:
        times.popleft()
    return sum(1 for ts in times if ts > cutoff)


def _require_positive(field: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{field} must be positive, got {value}")


def _percent(value: Fraction) -> str:
    """``12.50%`` for ``Fraction(1, 8)`` (display only; exact up to the rounding)."""
    scaled = Decimal(value.numerator) * 100 / Decimal(value.denominator)
    return f"{scaled.quantize(Decimal('0.01'))}%"
