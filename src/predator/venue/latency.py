"""Latency between us and the paper venue: order entry, responses and market data.

The L2 paper exchange asks a :class:`LatencyModel` how long each client request takes
to reach the matching engine, how long its reports take to come back, and how stale
the market data a strategy sees is. Delays are integer nanoseconds: constant, seeded
random (lognormal, from a :class:`~predator.core.rng.RngStreams` stream), or replayed
from data (local receive stamp minus exchange time), so a run stays a pure function of
(config, data, seed).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from predator.core.rng import RngStreams

__all__ = [
    "ConstantDelay",
    "Delay",
    "LatencyModel",
    "LognormalDelay",
    "RecordedDelay",
]


class Delay(Protocol):
    """One leg of latency: a non-negative delay in nanoseconds for an event at ``ts``."""

    def sample(self, ts: int) -> int:
        """The delay (ns, >= 0) of a message sent at kernel time ``ts``."""
        ...


class ConstantDelay:
    """The same delay every time (0 = no latency).

    >>> ConstantDelay(5_000_000).sample(123)
    5000000
    """

    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        if ns < 0:
            raise ValueError(f"a delay must be >= 0 ns, got {ns}")
        self.ns = ns

    def sample(self, ts: int) -> int:
        return self.ns

    def __repr__(self) -> str:
        return f"ConstantDelay({self.ns})"


class LognormalDelay:
    """A seeded lognormal delay: ``median_ns * exp(sigma * N(0, 1))``, plus ``floor_ns``.

    Network latency has a hard floor (the speed of light and the wire) and a long right
    tail; a lognormal above a floor models both. ``cap_ns`` cuts the tail (a request
    slower than that would have timed out). Draws come from ``rng`` (a named stream of
    :class:`~predator.core.rng.RngStreams`, never the ``random`` module) and are rounded
    to whole nanoseconds, so the same seed gives the same delays.

    >>> streams = RngStreams(7)
    >>> a = LognormalDelay(1_000_000, 0.5, rng=streams.stream("venue.latency.entry"))
    >>> b = LognormalDelay(1_000_000, 0.5, rng=RngStreams(7).stream("venue.latency.entry"))
    >>> [a.sample(0) for _ in range(3)] == [b.sample(0) for _ in range(3)]
    True
    """

    __slots__ = ("cap_ns", "floor_ns", "median_ns", "rng", "sigma")

    def __init__(
        self,
        median_ns: int,
        sigma: float,
        *,
        rng: np.random.Generator,
        floor_ns: int = 0,
        cap_ns: int | None = None,
    ) -> None:
        if median_ns <= 0 or floor_ns < 0:
            raise ValueError("median must be > 0 ns and floor >= 0 ns")
        if not (sigma >= 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
        if cap_ns is not None and cap_ns < floor_ns:
            raise ValueError("cap must be >= floor")
        self.median_ns = median_ns
        self.sigma = float(sigma)
        self.rng = rng
        self.floor_ns = floor_ns
        self.cap_ns = cap_ns

    def sample(self, ts: int) -> int:
        draw = float(self.rng.lognormal(math.log(self.median_ns), self.sigma))
        delay = self.floor_ns + round(draw)
        return delay if self.cap_ns is None else min(delay, self.cap_ns)

    def __repr__(self) -> str:
        return f"LognormalDelay(median_ns={self.median_ns}, sigma={self.sigma})"


class RecordedDelay:
    """Delays replayed from data: the delay in force at ``ts`` is the last one recorded
    at or before ``ts`` (the first one before the recording starts).

    Build it from ``(ts, delay_ns)`` pairs, or with :meth:`from_stamps` from pairs of
    (exchange time, local receive time) of a market-data capture.
    """

    __slots__ = ("_delays", "_times")

    def __init__(self, samples: Iterable[tuple[int, int]]) -> None:
        pairs = sorted(samples)
        if not pairs:
            raise ValueError("a RecordedDelay needs at least one sample")
        if any(delay < 0 for _, delay in pairs):
            raise ValueError("recorded delays must be >= 0 ns")
        self._times = [ts for ts, _ in pairs]
        self._delays = [delay for _, delay in pairs]

    @classmethod
    def from_stamps(
        cls, stamps: Iterable[tuple[int, int]], *, base_ns: int = 0, offset_ns: int | None = None
    ) -> RecordedDelay:
        """Delays ``local - exchange - offset + base`` from ``(exchange_ts, local_ts)``.

        Recorder clocks are rarely synchronised with the exchange (the Binance captures
        in the shared data run about 1.3 s *behind* it), so the raw difference is no
        latency. ``offset_ns`` (default: the smallest difference seen) removes the clock
        offset; what remains is the jitter of the feed above its fastest message, on top
        of ``base_ns`` (the one-way latency the fastest message had).
        """
        pairs = [(exchange, local - exchange) for exchange, local in stamps]
        if not pairs:
            raise ValueError("no stamps to derive delays from")
        offset = min(d for _, d in pairs) if offset_ns is None else offset_ns
        return cls((ts, max(0, d - offset + base_ns)) for ts, d in pairs)

    def sample(self, ts: int) -> int:
        index = bisect_right(self._times, ts) - 1
        return self._delays[max(index, 0)]

    def __len__(self) -> int:
        return len(self._times)

    def __repr__(self) -> str:
        return f"RecordedDelay({len(self._times)} samples)"


class LatencyModel:
    """The three legs of latency the L2 paper exchange applies.

    * ``entry``: from our request (submit, cancel, amend, heartbeat) to the matching
      engine;
    * ``response``: from the engine's report to our client;
    * ``market_data``: from an exchange event to our strategy seeing it (the exchange
      matches on the event at its own time; :meth:`observed_at` tells a feed when to
      deliver it).

    Each leg defaults to zero. :meth:`seeded` builds lognormal legs from
    :class:`~predator.core.rng.RngStreams`, one named stream per leg.
    """

    __slots__ = ("entry", "market_data", "response")

    def __init__(
        self,
        *,
        entry: Delay | None = None,
        response: Delay | None = None,
        market_data: Delay | None = None,
    ) -> None:
        self.entry: Delay = entry or ConstantDelay(0)
        self.response: Delay = response or ConstantDelay(0)
        self.market_data: Delay = market_data or ConstantDelay(0)

    @classmethod
    def zero(cls) -> LatencyModel:
        """No latency at all: requests and reports travel instantly."""
        return cls()

    @classmethod
    def constant(
        cls, entry_ns: int, response_ns: int | None = None, market_data_ns: int = 0
    ) -> LatencyModel:
        """Fixed delays; ``response_ns`` defaults to ``entry_ns`` (a symmetric link)."""
        return cls(
            entry=ConstantDelay(entry_ns),
            response=ConstantDelay(entry_ns if response_ns is None else response_ns),
            market_data=ConstantDelay(market_data_ns),
        )

    @classmethod
    def seeded(
        cls,
        streams: RngStreams,
        *,
        median_ns: int,
        sigma: float = 0.5,
        floor_ns: int = 0,
        cap_ns: int | None = None,
        market_data_median_ns: int | None = None,
    ) -> LatencyModel:
        """Lognormal legs drawn from ``streams`` (names ``venue.latency.<leg>``).

        ``market_data_median_ns`` (default: none) adds a lognormal market-data leg.
        """

        def leg(name: str, median: int) -> LognormalDelay:
            return LognormalDelay(
                median,
                sigma,
                rng=streams.stream(f"venue.latency.{name}"),
                floor_ns=floor_ns,
                cap_ns=cap_ns,
            )

        return cls(
            entry=leg("entry", median_ns),
            response=leg("response", median_ns),
            market_data=(
                None if market_data_median_ns is None else leg("market_data", market_data_median_ns)
            ),
        )

    def entry_ns(self, ts: int) -> int:
        """Delay of a request sent at ``ts`` before the engine sees it."""
        return self.entry.sample(ts)

    def response_ns(self, ts: int) -> int:
        """Delay of a report the engine sent at ``ts`` before the client sees it."""
        return self.response.sample(ts)

    def observed_at(self, ts: int) -> int:
        """When a strategy sees a market-data event the exchange stamped ``ts``."""
        return ts + self.market_data.sample(ts)

    def __repr__(self) -> str:
        return (
            f"LatencyModel(entry={self.entry!r}, response={self.response!r},"
            f" market_data={self.market_data!r})"
        )
