"""Bar fill model: when an order meets a bar, and at which price.

Conservative by design: a stop fills at the worse of its stop and the open; a limit
fills at its limit (or a better open); when stop and limit are both touched within one
bar of a stop-limit, the order waits for the next bar since intrabar order is unknown.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from math import ceil, floor
from typing import Protocol

from predator.market.bar import Bar
from predator.market.instrument import Instrument
from predator.venue.orders import Liquidity, OrderRequest, OrderType, Side

__all__ = ["BarFillModel", "FillMode"]


class FillMode(StrEnum):
    NEXT_OPEN = "next-open"
    """Market orders fill at the open of the bar after they were sent (default)."""
    CLOSE = "close"
    """Market orders fill at the close of the bar they were sent on (trade-on-close)."""


class _Resting(Protocol):
    request: OrderRequest
    stop_triggered: bool


class BarFillModel:
    """Trigger rules and price adjustments for bar-mode fills.

    ``spread_bps`` is the full bid-ask spread (a taker pays half of it);
    ``slippage_bps`` is paid on top by taker fills. Adjusted prices are rounded to the
    instrument's tick against the taker (up for buys, down for sells).
    """

    def __init__(
        self,
        market_fill: FillMode | str = FillMode.NEXT_OPEN,
        *,
        spread_bps: Decimal | str | int = 0,
        slippage_bps: Decimal | str | int = 0,
    ) -> None:
        self.market_fill = FillMode(market_fill)
        self.spread_bps = Decimal(spread_bps)
        self.slippage_bps = Decimal(slippage_bps)
        if self.spread_bps < 0 or self.slippage_bps < 0:
            raise ValueError("spread and slippage must be >= 0 bps")
        self._markup = Fraction(self.spread_bps / 2 + self.slippage_bps) / 10_000

    def trigger(self, resting: _Resting, bar: Bar) -> tuple[int | None, Liquidity]:
        """Fill price of ``resting`` on ``bar`` (``None``: no fill on this bar)."""
        request = resting.request
        kind = request.order_type
        buy = request.side is Side.BUY
        if kind is OrderType.MARKET:
            return bar.open, Liquidity.TAKER
        if kind is OrderType.STOP or (kind is OrderType.STOP_LIMIT and not resting.stop_triggered):
            stop = request.stop_price
            assert stop is not None
            hit = bar.high >= stop if buy else bar.low <= stop
            if not hit:
                return None, Liquidity.TAKER
            triggered_at = max(bar.open, stop) if buy else min(bar.open, stop)
            if kind is OrderType.STOP:
                return triggered_at, Liquidity.TAKER
            resting.stop_triggered = True
            limit = request.limit_price
            assert limit is not None
            # After the stop fires, the limit can only fill at or better than the limit;
            # if it sits on the far side of the stop, intrabar order is unknown: wait.
            if (buy and limit < triggered_at) or (not buy and limit > triggered_at):
                return None, Liquidity.TAKER
            return triggered_at, Liquidity.TAKER
        limit = request.limit_price
        assert limit is not None
        if buy:
            hit, price = bar.low <= limit, min(bar.open, limit)
        else:
            hit, price = bar.high >= limit, max(bar.open, limit)
        return (price if hit else None), Liquidity.MAKER

    def adjust(self, price: int, side: Side, instrument: Instrument) -> int:
        """Taker price after half-spread and slippage, rounded to tick against the taker."""
        if not self._markup:
            return price
        tick = instrument.price_increment
        raw = price * (1 + side * self._markup)
        ticks = ceil(raw / tick) if side is Side.BUY else floor(raw / tick)
        return ticks * tick
