"""Long price paths made of real ones: a block bootstrap of a real feed's bar moves.

Long runs (a 365-day journal, a chaos campaign) need more data than a capture holds; no
toy random walk stands in for it. Each synthetic bar repeats a real bar's move relative
to the real close before it, in blocks of consecutive real bars drawn with a seeded RNG,
so intraday shape, volatility clustering within a block and volume are real.
"""

from __future__ import annotations

from predator.core.rng import RngStreams
from predator.market.bar_loader import BarFeed

__all__ = ["block_bootstrap"]


def block_bootstrap(
    feed: BarFeed,
    *,
    bars: int,
    seed: int,
    block: int = 1440,
    name: str | None = None,
) -> BarFeed:
    """A feed of ``bars`` bars built from blocks of ``block`` consecutive bars of ``feed``.

    The first block is the start of ``feed`` itself; every later one starts at a bar drawn
    from the seeded stream. A synthetic bar's open, high, low and close are the real bar's
    prices scaled by ``synthetic previous close / real previous close`` with integer
    floor division, so ``low <= open, close <= high`` still holds exactly. Bars are spaced
    by the feed's first interval, starting at its first bar. Same feed, ``bars``, ``block``
    and ``seed`` -> the same feed.

    >>> year = block_bootstrap(load_bars("btc_1m.csv.gz"), bars=525_600, seed=7)  # doctest: +SKIP
    """
    source = len(feed)
    if source < 2:
        raise ValueError("block_bootstrap needs a feed of at least two bars")
    if bars < 1 or block < 1:
        raise ValueError(f"bars and block must be >= 1, got bars={bars}, block={block}")
    block = min(block, source - 1)
    ts0 = feed.timestamps()
    step = ts0[1] - ts0[0]
    closes = feed.closes()
    opens, highs, lows, volumes = feed._open, feed._high, feed._low, feed._volume
    rng = RngStreams(seed).stream("market.block_bootstrap")
    out_o: list[int] = []
    out_h: list[int] = []
    out_l: list[int] = []
    out_c: list[int] = []
    out_v: list[int] | None = None if volumes is None else []
    previous = closes[0]
    # The first block replays the feed from its second bar (its first bar has no move).
    start = 1
    while len(out_c) < bars:
        for i in range(start, min(start + block, source)):
            if len(out_c) == bars:
                break
            base = closes[i - 1]
            if base <= 0:
                continue
            out_o.append(previous * opens[i] // base)
            out_h.append(previous * highs[i] // base)
            out_l.append(previous * lows[i] // base)
            close = previous * closes[i] // base
            out_c.append(close)
            if out_v is not None and volumes is not None:
                out_v.append(volumes[i])
            previous = close if close > 0 else previous
        start = 1 + int(rng.integers(0, source - block))
    return BarFeed(
        path=name or f"{feed.path} (block bootstrap seed={seed}, block={block})",
        format=feed.format,
        instrument=feed.instrument,
        volume_precision=feed.volume_precision,
        ts=[ts0[0] + i * step for i in range(bars)],
        opens=out_o,
        highs=out_h,
        lows=out_l,
        closes=out_c,
        volumes=out_v,
    )
