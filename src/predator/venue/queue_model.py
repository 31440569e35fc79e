"""Queue-position models: how much displayed size rests ahead of our paper limit order.

A replayed L2 book shows only the total size at each price, never who is first. When our
order joins a level, everything displayed there is ahead of it. Trades at our price eat
the queue from the front; a size decrease that is no trade (a cancel) may come from
ahead of us or from behind. The models below decide, in the style of hftbacktest's
queue models: :class:`RiskAverseQueue` never credits cancels (only trades advance us),
:class:`ProbQueue` attributes a decrease to the front with probability
``f(ahead) / (f(ahead) + f(behind))`` for a chosen ``f`` (power or log).

Sizes are ints at the instrument's size precision; estimates are rounded half-even.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Protocol

__all__ = [
    "ProbQueue",
    "QueueModel",
    "QueuePosition",
    "RiskAverseQueue",
    "log_queue",
    "power_queue",
]


class QueuePosition:
    """Our place at one price level: ``ahead`` is the displayed size in front of us.

    ``traded`` is the trade volume at our price seen since the last book update of the
    level; the next update already reflects it, so a model must not count it twice.
    """

    __slots__ = ("ahead", "traded")

    def __init__(self, ahead: int) -> None:
        if ahead < 0:
            raise ValueError(f"queue ahead must be >= 0, got {ahead}")
        self.ahead = ahead
        self.traded = 0

    def __repr__(self) -> str:
        return f"QueuePosition(ahead={self.ahead}, traded={self.traded})"


class QueueModel(Protocol):
    """How trades and book changes at our price move our queue position."""

    def on_trade(self, position: QueuePosition, quantity: int) -> int:
        """A trade of ``quantity`` hit our level; return the volume left over for us
        (0 while the queue ahead was not consumed)."""
        ...

    def on_level_change(self, position: QueuePosition, before: int, after: int) -> None:
        """The displayed size at our price went from ``before`` to ``after``."""
        ...


def _trade(position: QueuePosition, quantity: int) -> int:
    """Trades eat the queue from the front; the excess reaches us."""
    position.traded += quantity
    if quantity <= position.ahead:
        position.ahead -= quantity
        return 0
    excess = quantity - position.ahead
    position.ahead = 0
    return excess


class RiskAverseQueue:
    """Only trades advance us: a cancel is always assumed to come from behind.

    The one exception is physical: the queue ahead can never exceed what is displayed,
    so when the level shrinks below our estimate the estimate shrinks with it.
    """

    __slots__ = ()

    def on_trade(self, position: QueuePosition, quantity: int) -> int:
        return _trade(position, quantity)

    def on_level_change(self, position: QueuePosition, before: int, after: int) -> None:
        position.traded = 0
        position.ahead = min(position.ahead, after)

    def __repr__(self) -> str:
        return "RiskAverseQueue()"


Weight = Callable[[int], Fraction]
"""``f`` of a probabilistic queue: a non-negative weight for a queue size."""


def power_queue(exponent: int) -> Weight:
    """``f(x) = x ** exponent`` (hftbacktest's PowerProbQueueFunc), exact."""
    if exponent < 1:
        raise ValueError(f"exponent must be >= 1, got {exponent}")

    def weight(size: int) -> Fraction:
        return Fraction(size) ** exponent

    weight.__name__ = f"power{exponent}"
    return weight


def log_queue(size: int) -> Fraction:
    """``f(x) = log(1 + x)`` (hftbacktest's LogProbQueueFunc).

    The logarithm is a float; ``Fraction`` keeps the rest of the arithmetic exact.
    """
    return Fraction(math.log1p(size))


class ProbQueue:
    """A size decrease at our level comes from the front with probability
    ``f(ahead) / (f(ahead) + f(behind))`` (its expected share is credited to us).

    As in hftbacktest's ProbQueueModel: trade volume already counted since the last
    update is taken out of the decrease first, an increase never moves us (new orders
    join the back), and the estimate is capped at the displayed size.

    >>> model = ProbQueue(power_queue(2))
    >>> position = QueuePosition(ahead=30)
    >>> model.on_level_change(position, 40, 30)  # 10 cancelled, 30 ahead, 10 behind
    >>> position.ahead  # 10 * 900 / (900 + 100) = 9 of them from the front
    21
    """

    __slots__ = ("weight",)

    def __init__(self, weight: Weight) -> None:
        self.weight = weight

    def on_trade(self, position: QueuePosition, quantity: int) -> int:
        return _trade(position, quantity)

    def on_level_change(self, position: QueuePosition, before: int, after: int) -> None:
        change = before - after - position.traded
        position.traded = 0
        if change <= 0:
            position.ahead = min(position.ahead, after)
            return
        ahead = position.ahead
        behind = max(0, before - ahead)
        f_ahead, f_behind = self.weight(ahead), self.weight(behind)
        total = f_ahead + f_behind
        share = Fraction(1) if total == 0 else f_ahead / total
        # What the back cannot absorb must have come from the front.
        from_front = max(share * change, Fraction(change - behind))
        estimate = round(ahead - from_front)
        position.ahead = max(0, min(estimate, after))

    def __repr__(self) -> str:
        return f"ProbQueue({getattr(self.weight, '__name__', self.weight)!r})"
