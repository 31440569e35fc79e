"""Market scenarios as transforms of a real bar path: exact ints, OHLC kept consistent.

Each transform maps every price of a bar through a monotonic function (so ``low <= open,
close <= high`` survives floor rounding) and joins the bars without gaps: the bars before
``start_ns`` are untouched, the ones after the scenario keep its final level.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from math import floor

from predator.market.bar import Bar
from predator.market.bar_loader import BarFeed

__all__ = ["bear_market", "flash_crash", "parabolic_mania", "tail_loss"]

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND


def _scaled(
    feed: BarFeed, start_ns: int, factor: Callable[[int, Bar], Fraction], name: str
) -> BarFeed:
    """Every bar from ``start_ns`` on multiplied by ``factor(i, bar)`` (floored, >= 1 tick)."""
    ts: list[int] = []
    opens: list[int] = []
    highs: list[int] = []
    lows: list[int] = []
    closes: list[int] = []
    volumes: list[int] = []
    tick = feed.instrument.price_increment
    i = -1
    for bar in feed:
        ts.append(bar.ts)
        volumes.append(bar.volume)
        if bar.ts < start_ns:
            opens.append(bar.open)
            highs.append(bar.high)
            lows.append(bar.low)
            closes.append(bar.close)
            continue
        i += 1
        f = factor(i, bar)
        o, h, lo, c = (
            max(tick, floor(p * f) // tick * tick) for p in (bar.open, bar.high, bar.low, bar.close)
        )
        opens.append(o)
        highs.append(max(h, o, c))
        lows.append(min(lo, o, c))
        closes.append(c)
    return BarFeed(
        path=f"{feed.path} ({name} from {start_ns})",
        format=feed.format,
        instrument=feed.instrument,
        volume_precision=feed.volume_precision,
        ts=ts,
        opens=opens,
        highs=highs,
        lows=lows,
        closes=closes,
        volumes=volumes if feed.has_volume else None,
    )


def _bars_in(feed: BarFeed, start_ns: int, span_ns: int) -> int:
    """How many bars of ``feed`` fall in ``[start_ns, start_ns + span_ns)`` (at least 1)."""
    return max(1, sum(1 for t in feed.timestamps() if start_ns <= t < start_ns + span_ns))


def flash_crash(
    feed: BarFeed,
    start_ns: int,
    *,
    drop: Fraction = Fraction(30, 100),
    crash_minutes: int = 10,
    rebound: Fraction = Fraction(1, 2),
    rebound_minutes: int = 60,
) -> BarFeed:
    """Prices fall by ``drop`` within ``crash_minutes``, then win back ``rebound`` of the
    fall over ``rebound_minutes``, and stay at that level."""
    crash = _bars_in(feed, start_ns, crash_minutes * 60 * NS_PER_SECOND)
    back = _bars_in(
        feed, start_ns + crash_minutes * 60 * NS_PER_SECOND, rebound_minutes * 60 * NS_PER_SECOND
    )
    bottom = 1 - drop
    final = bottom + drop * rebound

    def factor(i: int, _bar: Bar) -> Fraction:
        if i < crash:
            return 1 - drop * Fraction(i + 1, crash)
        if i < crash + back:
            return bottom + (final - bottom) * Fraction(i - crash + 1, back)
        return final

    return _scaled(feed, start_ns, factor, "flash_crash")


def bear_market(
    feed: BarFeed, start_ns: int, *, days: int = 90, decline: Fraction = Fraction(40, 100)
) -> BarFeed:
    """A steady negative drift: the trend factor falls linearly by ``decline`` over
    ``days`` on top of the real moves, then stays there."""
    n = _bars_in(feed, start_ns, days * NS_PER_DAY)

    def factor(i: int, _bar: Bar) -> Fraction:
        return 1 - decline * Fraction(min(i + 1, n), n)

    return _scaled(feed, start_ns, factor, "bear_market")


def tail_loss(
    feed: BarFeed, start_ns: int, *, drop: Fraction = Fraction(15, 100), hours: int = 24
) -> BarFeed:
    """A -``drop`` slide within one day (a pool that is long loses about as much)."""
    n = _bars_in(feed, start_ns, hours * 3600 * NS_PER_SECOND)

    def factor(i: int, _bar: Bar) -> Fraction:
        return 1 - drop * Fraction(min(i + 1, n), n)

    return _scaled(feed, start_ns, factor, "tail_loss")


def parabolic_mania(feed: BarFeed, start_ns: int, *, volatility: int = 5, days: int = 7) -> BarFeed:
    """Every move multiplied by ``volatility`` for ``days``: each price is re-based on the
    new previous close as ``new_prev * (1 + volatility * (price / prev - 1))`` (a
    monotonic map, so OHLC order holds), floored at 1 % of the previous close."""
    end = start_ns + days * NS_PER_DAY
    ts: list[int] = []
    cols: list[list[int]] = [[], [], [], []]
    volumes: list[int] = []
    tick = feed.instrument.price_increment
    prev_real: int | None = None
    prev_new: int | None = None
    for bar in feed:
        ts.append(bar.ts)
        volumes.append(bar.volume)
        prices = (bar.open, bar.high, bar.low, bar.close)
        new: tuple[int, ...]
        if bar.ts < start_ns or prev_real is None or prev_new is None:
            new = prices
        elif bar.ts < end:
            floor_price = max(tick, prev_new // 100)
            new = tuple(
                max(
                    floor_price,
                    floor(prev_new * (1 + volatility * (Fraction(p, prev_real) - 1)))
                    // tick
                    * tick,
                )
                for p in prices
            )
        else:
            new = tuple(
                max(tick, floor(Fraction(p * prev_new, prev_real)) // tick * tick) for p in prices
            )
        for column, value in zip(cols, new, strict=True):
            column.append(value)
        prev_real, prev_new = bar.close, new[3]
    opens, highs, lows, closes = cols
    highs = [max(h, o, c) for o, h, c in zip(opens, highs, closes, strict=True)]
    lows = [min(lo, o, c) for o, lo, c in zip(opens, lows, closes, strict=True)]
    return BarFeed(
        path=f"{feed.path} (parabolic_mania from {start_ns})",
        format=feed.format,
        instrument=feed.instrument,
        volume_precision=feed.volume_precision,
        ts=ts,
        opens=opens,
        highs=highs,
        lows=lows,
        closes=closes,
        volumes=volumes if feed.has_volume else None,
    )
