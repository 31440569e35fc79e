"""What an L2 run learns from its capture files before it starts: instrument and identity.

The capture reader yields prices and sizes as ints at the decimals it chose for the
stream; the instrument of the run must use exactly those decimals. They are learnt the
way the venue tests learn them: the reader's first trade (or quote) is compared with the
text of the same message in the file. The data's SHA-256 goes into ``RunStarted``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Any

from predator.core.numbers import NotRepresentable, from_decimal
from predator.market.depth_loader import detect_format, read_binance_capture
from predator.market.errors import DataFormatError
from predator.market.instrument import Instrument
from predator.market.l2 import QuoteTick, TradeTick

__all__ = ["CaptureError", "capture_instrument", "capture_sha256"]

_QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
"""Quote assets recognised at the end of a Binance symbol (longest first)."""

_SCAN_LINES = 100_000
"""How far into the first file the first trade or quote is looked for."""


class CaptureError(ValueError):
    """A capture cannot be replayed as given (a user error, one line)."""


def capture_instrument(
    paths: Sequence[str | os.PathLike[str]],
    *,
    symbol: str | None = None,
    tick_size: str | None = None,
    lot_size: str | None = None,
) -> Instrument:
    """The instrument of Binance captures ``paths``, at the decimals the reader yields.

    ``tick_size`` / ``lot_size`` (decimal strings) default to one unit of those
    decimals; ``symbol`` defaults to the stream's.
    """
    if not paths:
        raise CaptureError("no capture file given")
    for path in paths:
        if not os.path.isfile(path):
            raise CaptureError(f"{os.fspath(path)}: no such file")
        try:
            kind = detect_format(path)
        except DataFormatError as exc:
            raise CaptureError(str(exc)) from None
        if kind != "binance-capture":
            raise CaptureError(
                f"{os.fspath(path)}: a {kind} file; replay reads Binance websocket captures"
                " (hftbacktest *.jsonl.gz)"
            )
    first = os.fspath(paths[0])
    name, price_decimals, size_decimals = _learn_decimals(first, symbol)
    return Instrument(
        symbol=name,
        venue="BINANCE",
        quote_currency=next((q for q in _QUOTE_ASSETS if name.endswith(q)), "USD"),
        price_precision=price_decimals,
        size_precision=size_decimals,
        price_increment=_increment("tick_size", tick_size, price_decimals),
        size_increment=_increment("lot_size", lot_size, size_decimals),
    )


def capture_sha256(paths: Sequence[str | os.PathLike[str]]) -> str:
    """SHA-256 of the capture files' bytes, in replay order (what the run reads)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _increment(option: str, text: str | None, decimals: int) -> int:
    if text is None:
        return 1
    try:
        value = Decimal(text)
        units = from_decimal(value, decimals)
    except (InvalidOperation, NotRepresentable):
        raise CaptureError(
            f"{option} must be a number with at most {decimals} decimals (the capture's),"
            f" got {text!r}"
        ) from None
    if units <= 0:
        raise CaptureError(f"{option} must be > 0, got {text}")
    return units


def _learn_decimals(path: str, symbol: str | None) -> tuple[str, int, int]:
    """``(symbol, price decimals, size decimals)`` of the reader's events from ``path``."""
    try:
        for event in islice(read_binance_capture([path], symbol=symbol), _SCAN_LINES):
            if isinstance(event, TradeTick) and event.price and event.size:
                key, fields = ("trade", event.trade_id), ("p", "q")
                units = (event.price, event.size)
            elif isinstance(event, QuoteTick) and event.bid_price and event.bid_size:
                key, fields = ("quote", event.update_id), ("b", "B")
                units = (event.bid_price, event.bid_size)
            else:
                continue
            texts = _message_fields(path, key, fields)
            if texts is None:
                continue
            price, size = (_decimals(n, t) for n, t in zip(units, texts, strict=True))
            if price is not None and size is not None:
                return event.symbol, price, size
    except DataFormatError as exc:
        raise CaptureError(str(exc)) from None
    raise CaptureError(
        f"{path}: no trade or quote in its first {_SCAN_LINES} messages to learn the"
        " price and size decimals from"
    )


def _message_fields(
    path: str, key: tuple[str, int], fields: tuple[str, str]
) -> tuple[str, str] | None:
    """The text of ``fields`` in the first trade (``t``) or bookTicker (``u``) message ``key``."""
    kind, number = key
    id_field = "t" if kind == "trade" else "u"
    needle = f'"{id_field}":{number}'.encode()
    try:
        with gzip.open(path, "rb") as handle:
            for line in islice(handle, _SCAN_LINES):
                if needle not in line:
                    continue
                _, _, text = line.partition(b" ")
                message: Any = json.loads(text)
                data = message.get("data", message) if isinstance(message, dict) else None
                if not isinstance(data, dict) or data.get(id_field) != number:
                    continue
                if kind == "trade" and data.get("e") != "trade":
                    continue
                if kind == "quote" and ("b" not in data or "U" in data):
                    continue
                values = data.get(fields[0]), data.get(fields[1])
                if all(isinstance(v, str) for v in values):
                    return str(values[0]), str(values[1])
    except (OSError, EOFError, zlib.error, ValueError):
        return None
    return None


def _decimals(units: int, text: str) -> int | None:
    """``k`` with ``units == text * 10**k`` exactly, or ``None``."""
    try:
        ratio = Decimal(units) / Decimal(text)
    except (InvalidOperation, ArithmeticError):
        return None
    exponent = ratio.adjusted()
    if exponent < 0 or ratio != Decimal(10) ** exponent:
        return None
    return exponent
