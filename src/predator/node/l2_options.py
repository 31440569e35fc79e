"""The L2 venue's options as a replay takes them: latency and queue-model specs.

``parse_latency("constant:20")`` and ``parse_queue_model("prob_power:3")`` turn the short
texts of ``ReplayConfig`` and ``predator replay`` into the venue's models; a bad spec
raises ``ValueError`` with the accepted forms (the caller turns it into one line).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from predator.core.rng import RngStreams
from predator.venue.latency import LatencyModel
from predator.venue.queue_model import (
    ProbQueue,
    QueueModel,
    RiskAverseQueue,
    log_queue,
    power_queue,
)

__all__ = ["LATENCY_FORMS", "QUEUE_MODELS", "parse_latency", "parse_queue_model"]

LATENCY_FORMS = (
    "none, MS, constant:ENTRY_MS[,RESPONSE_MS[,MARKET_DATA_MS]] or "
    "lognormal:MEDIAN_MS[,SIGMA[,MARKET_DATA_MEDIAN_MS]]"
)
"""The accepted ``latency`` specs (milliseconds may have decimals)."""

QUEUE_MODELS = ("risk_averse", "prob_power", "prob_log")
"""The accepted queue models (``prob_power:N`` picks the exponent, 2 by default)."""

_NS_PER_MS = 1_000_000


def _ms(text: str, what: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ValueError(f"latency {what} must be a number of milliseconds >= 0, got {text!r}")
    ns = value * _NS_PER_MS
    if ns != ns.to_integral_value():
        raise ValueError(f"latency {what} {text} ms is not a whole number of nanoseconds")
    return int(ns)


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def parse_latency(text: str, seed: int = 0) -> LatencyModel | None:
    """The latency model ``text`` names; ``None`` for no latency at all.

    ``MS`` alone is ``constant:MS`` (the same delay to the venue and back, none on
    market data). Lognormal legs draw from ``RngStreams(seed)``.

    >>> parse_latency("none") is None, parse_latency("constant:20,30,5").market_data
    (True, ConstantDelay(5000000))
    """
    spec = text.strip().lower()
    if spec in ("", "none", "0"):
        return None
    kind, sep, rest = spec.partition(":")
    if not sep and _is_number(spec):
        kind, rest = "constant", spec
    parts = rest.split(",") if rest else []
    try:
        if kind == "constant" and 1 <= len(parts) <= 3:
            entry = _ms(parts[0], "entry")
            response = _ms(parts[1], "response") if len(parts) > 1 else entry
            market = _ms(parts[2], "market data") if len(parts) > 2 else 0
            if not (entry or response or market):
                return None
            return LatencyModel.constant(entry, response, market)
        if kind == "lognormal" and 1 <= len(parts) <= 3:
            median = _ms(parts[0], "median")
            sigma = Decimal(parts[1]) if len(parts) > 1 else Decimal("0.5")
            if not sigma.is_finite() or sigma < 0:
                raise ValueError(f"latency sigma must be a number >= 0, got {parts[1]!r}")
            data_median = _ms(parts[2], "market data median") if len(parts) > 2 else None
            if median <= 0 or data_median == 0:
                raise ValueError("lognormal latency medians must be > 0 ms")
            return LatencyModel.seeded(
                RngStreams(seed),
                median_ns=median,
                sigma=float(sigma),
                market_data_median_ns=data_median,
            )
    except InvalidOperation:
        pass
    raise ValueError(f"invalid latency {text!r}: expected {LATENCY_FORMS}")


def parse_queue_model(text: str) -> QueueModel:
    """The queue model ``text`` names (see :data:`QUEUE_MODELS`).

    >>> parse_queue_model("prob_power:3")
    ProbQueue('power3')
    """
    spec = text.strip().lower()
    name, sep, arg = spec.partition(":")
    if name == "risk_averse" and not sep:
        return RiskAverseQueue()
    if name == "prob_log" and not sep:
        return ProbQueue(log_queue)
    if name == "prob_power":
        if not sep:
            return ProbQueue(power_queue(2))
        if arg.isdigit() and int(arg) >= 1:
            return ProbQueue(power_queue(int(arg)))
    raise ValueError(
        f"invalid queue model {text!r}: expected risk_averse, prob_power[:N] (N >= 1) or prob_log"
    )
