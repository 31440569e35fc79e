"""Load OHLCV bar files (CSV, plain or gzip) into a validated, replayable :class:`BarFeed`.

The whole file is read and checked before a feed exists, so a malformed row stops a run
before it starts and nothing is half-loaded. Prices become exact ints at the precision the
file itself shows; bar-mode runs iterate the feed as :class:`~predator.market.bar.Bar` events.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from itertools import islice
from operator import add, ge, itemgetter
from pathlib import Path

from predator.core.numbers import parse_fixed
from predator.market.bar import Bar
from predator.market.errors import DataFormatError
from predator.market.instrument import Instrument

__all__ = ["BarFeed", "load_bars"]

_GZIP_MAGIC = b"\x1f\x8b"

# Header names (lower-cased, stripped) accepted for the time column. The empty name is the
# unnamed date index pandas writes (backtesting.py files); it is accepted only as column 1.
_TIME_COLUMNS = ("", "date", "datetime", "time", "timestamp", "open_time", "timestamp_utc")
_PRICE_COLUMNS = ("open", "high", "low", "close")
_REQUIRED = "a time column (" + "/".join(n or "<unnamed>" for n in _TIME_COLUMNS) + ")"
_REQUIRED += ", open, high, low, close; optional volume"

# Known header layouts, named after where each was first seen. The name describes the
# column layout only; any other header with the required columns loads as "ohlcv".
_LAYOUTS: dict[tuple[str, ...], str] = {
    ("", "open", "high", "low", "close", "volume"): "backtesting.py",
    ("", "open", "high", "low", "close"): "backtesting.py",
    ("date", "open", "high", "low", "close", "adj close", "volume"): "yahoo",
    ("date", "open", "high", "low", "close", "volume", "adj close"): "yahoo",
    ("open_time", "open", "high", "low", "close", "volume"): "binance-klines",
    ("timestamp", "open", "high", "low", "close"): "fxcm",
    ("timestamp_utc", "open", "high", "low", "close", "volume"): "cme",
}

# File-name tokens that are never the symbol (vendors, sides, bar sizes, versions).
_NOT_SYMBOL = frozenset(
    {
        "backtesting", "py", "backtrader", "binance", "binanceus", "fxcm", "cme", "yahoo",
        "truefx", "nautilus", "bid", "ask", "mid", "head", "daily", "hourly", "weekly",
        "monthly", "minute", "ohlc", "ohlcv", "bars", "klines", "candles", "data", "reordered",
        "csv", "txt", "gz",
    }
)  # fmt: skip
_BAR_SIZE = re.compile(r"\d+(s|m|h|d|w|min|mo)|[smhdw]\d+", re.IGNORECASE)
# A whole column of unsigned plain decimals, one per line; possessive so a bad cell fails
# in linear time instead of backtracking through every earlier cell.
_PLAIN_COLUMN = re.compile(r"(?>\d+(?:\.\d*)?|\.\d+)(?:\n(?>\d+(?:\.\d*)?|\.\d+))*+", re.ASCII)
_ODD_LINE = re.compile(r"^(?!(?>\d+(?:\.\d*)?|\.\d+)$).*$", re.ASCII | re.MULTILINE)
_QUOTE_CURRENCIES = ("USDT", "USDC", "BUSD", "USD", "EUR", "JPY", "GBP", "CHF", "AUD", "CAD")

_NS_PER_SECOND = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_SECOND
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class BarFeed:
    """The bars of one file, validated and stored as parallel columns of exact ints.

    Iterating yields :class:`Bar` events in time order (strictly increasing ``ts``, ns UTC,
    the bar's open time); prices are at ``instrument.price_precision`` and volumes at
    ``volume_precision`` (0 and all-zero volumes when the file has no volume column).
    Built by :func:`load_bars`; iterating twice yields the same bars.
    """

    __slots__ = (
        "_close",
        "_high",
        "_low",
        "_open",
        "_ts",
        "_volume",
        "format",
        "has_volume",
        "instrument",
        "path",
        "volume_precision",
    )

    def __init__(
        self,
        *,
        path: str,
        format: str,
        instrument: Instrument,
        volume_precision: int,
        ts: list[int],
        opens: list[int],
        highs: list[int],
        lows: list[int],
        closes: list[int],
        volumes: list[int] | None,
    ) -> None:
        if not ts:
            raise ValueError("a BarFeed holds at least one bar")
        columns = [opens, highs, lows, closes] + ([] if volumes is None else [volumes])
        if any(len(column) != len(ts) for column in columns):
            raise ValueError("all BarFeed columns must have one value per bar")
        self.path = path
        self.format = format
        self.instrument = instrument
        self.volume_precision = volume_precision
        self.has_volume = volumes is not None
        self._ts = ts
        self._open = opens
        self._high = highs
        self._low = lows
        self._close = closes
        self._volume = volumes

    @property
    def first_ts(self) -> int:
        """Open time of the first bar (ns since epoch, UTC)."""
        return self._ts[0]

    @property
    def last_ts(self) -> int:
        """Open time of the last bar (ns since epoch, UTC)."""
        return self._ts[-1]

    def __len__(self) -> int:
        return len(self._ts)

    def __iter__(self) -> Iterator[Bar]:
        symbol = self.instrument.symbol
        if self._volume is None:
            for ts, o, h, lo, c in zip(
                self._ts, self._open, self._high, self._low, self._close, strict=True
            ):
                yield Bar(ts=ts, symbol=symbol, open=o, high=h, low=lo, close=c)
            return
        rows = zip(
            self._ts, self._open, self._high, self._low, self._close, self._volume, strict=True
        )
        for ts, o, h, lo, c, v in rows:
            yield Bar(ts=ts, symbol=symbol, open=o, high=h, low=lo, close=c, volume=v)

    def closes(self) -> list[int]:
        """All closes in time order (a copy), at ``instrument.price_precision``."""
        return list(self._close)

    def timestamps(self) -> list[int]:
        """All bar open times in order (a copy), ns since epoch UTC."""
        return list(self._ts)

    def __repr__(self) -> str:
        return (
            f"BarFeed({self.path!r}, format={self.format!r}, symbol="
            f"{self.instrument.symbol!r}, bars={len(self)}, "
            f"price_precision={self.instrument.price_precision}, "
            f"volume_precision={self.volume_precision})"
        )


def load_bars(
    path: str | os.PathLike[str],
    *,
    symbol: str | None = None,
    size_precision: int = 0,
    quote_currency: str | None = None,
) -> BarFeed:
    """Read, validate and store every bar of an OHLCV file (CSV, gzip detected by content).

    The header is matched case-insensitively by name, so column order and extra columns
    (``Adj Close``, which is ignored) do not matter. Dates without a time are midnight UTC;
    naive datetimes are UTC; offsets are converted to UTC. ``symbol`` defaults to the one
    the file name carries (``binanceus_BTCUSDT_1m_...`` -> ``BTCUSDT``) and
    ``quote_currency`` to the pair's quote (``USDJPY`` -> ``JPY``), else ``USD``.

    Raises :class:`DataFormatError` (one line: file, line, column, what was expected) for a
    missing or empty file, an unrecognised header, a short or long row, a non-numeric or
    negative number, a bar whose open or close lies outside [low, high], an unparseable
    timestamp, or timestamps that do not strictly increase.

    >>> feed = load_bars("binanceus_BTCUSDT_1m_20230301_20230321.csv.gz")  # doctest: +SKIP
    >>> feed.instrument.price_precision, len(feed)  # doctest: +SKIP
    (2, 30240)
    """
    if size_precision < 0:
        raise ValueError(f"size_precision must be >= 0, got {size_precision}")
    name = os.fspath(path)
    return _BarFileReader(name).read(
        symbol=symbol or _symbol_from_file_name(name),
        size_precision=size_precision,
        quote_currency=quote_currency,
    )


class _BarFileReader:
    """One load: map the header, check shape and time, then convert prices column by column.

    Work is columnar (``zip(*rows)``, one regex over a whole column) because per-cell Python
    calls would dominate: a month of 1-minute bars is 150k numeric cells. Line numbers are
    only recomputed when an error needs one.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.text = ""
        self.header: list[str] = []

    def fail(
        self, line: int | None, column: int | None, expected: str, got: str | None = None
    ) -> DataFormatError:
        label = None if column is None else self.label(column)
        return DataFormatError(self.path, line, label, expected, got)

    def fail_at(
        self, row: int, column: int | None, expected: str, got: str | None = None
    ) -> DataFormatError:
        """The error for data row ``row`` (0-based, blank lines skipped), found by its line."""
        return self.fail(self.line_of(row), column, expected, got)

    def label(self, column: int) -> str:
        """The column's header name, or its 1-based index when the header leaves it unnamed."""
        return self.header[column].strip() or str(column + 1)

    def line_of(self, row: int) -> int:
        """1-based line of data row ``row``; re-reads the text, so only used on errors."""
        reader = csv.reader(io.StringIO(self.text, newline=""))
        next(reader)
        seen = -1
        for fields in reader:
            if fields:
                seen += 1
                if seen == row:
                    return reader.line_num
        raise AssertionError(f"row {row} not in {self.path}")  # pragma: no cover

    def read(self, *, symbol: str, size_precision: int, quote_currency: str | None) -> BarFeed:
        self.text = _read_text(self.path)
        reader = csv.reader(io.StringIO(self.text, newline=""))
        header = next(reader, None)
        if header is None or not any(field.strip() for field in header):
            raise self.fail(1, None, "a header line naming the columns (the file is empty)")
        self.header = header
        names = [field.strip().lower() for field in header]
        time_col, price_cols, volume_col = self.map_columns(names)

        rows = [fields for fields in reader if fields]  # a blank line carries no bar
        if not rows:
            raise self.fail(2, None, "at least one bar after the header (the file has none)")
        width = len(header)
        if any(len(fields) != width for fields in rows):
            k = next(k for k, fields in enumerate(rows) if len(fields) != width)
            got = len(rows[k])
            raise self.fail_at(k, got if got < width else None, f"{width} fields, got {got}")
        columns = list(zip(*rows, strict=True))
        del rows

        ts = self.timestamps(columns[time_col], time_col)
        # Precision is a property of the whole file: all four price columns are scanned
        # before any is converted, so 100 and 100.25 in one file both land at 2 decimals.
        price_precision, (o, h, lo, c) = self.numbers(columns, price_cols, "price")
        self.check_ranges(price_cols, columns, (o, h, lo, c))
        volume_precision = 0
        volumes: list[int] | None = None
        if volume_col is not None:
            volume_precision, (volumes,) = self.numbers(columns, (volume_col,), "volume")

        instrument = Instrument(
            symbol=symbol,
            quote_currency=quote_currency or _quote_of(symbol),
            price_precision=price_precision,
            size_precision=size_precision,
        )
        return BarFeed(
            path=self.path,
            format=_LAYOUTS.get(tuple(names), "ohlcv"),
            instrument=instrument,
            volume_precision=volume_precision,
            ts=ts,
            opens=o,
            highs=h,
            lows=lo,
            closes=c,
            volumes=volumes,
        )

    def map_columns(self, names: list[str]) -> tuple[int, tuple[int, int, int, int], int | None]:
        """Indices of the time, open/high/low/close and volume columns, by header name."""
        found = ", ".join(repr(field.strip()) for field in self.header)
        times = [i for i, n in enumerate(names) if n in _TIME_COLUMNS and (n or i == 0)]
        if not times:
            raise self.fail(1, None, f"a time column; required: {_REQUIRED}; found {found}")
        if len(times) > 1:
            both = " and ".join(repr(self.label(i)) for i in times)
            raise self.fail(1, times[1], f"one time column, found {both}; required: {_REQUIRED}")
        index: dict[str, int] = {}
        for i, n in enumerate(names):
            if n in _PRICE_COLUMNS or n == "volume":
                if n in index:
                    raise self.fail(1, i, f"one '{n}' column, found two; found {found}")
                index[n] = i
        for n in _PRICE_COLUMNS:
            if n not in index:
                raise DataFormatError(
                    self.path, 1, n, f"a '{n}' column; required: {_REQUIRED}; found {found}"
                )
        o, h, lo, c = (index[n] for n in _PRICE_COLUMNS)
        return times[0], (o, h, lo, c), index.get("volume")

    def timestamps(self, texts: tuple[str, ...], col: int) -> list[int]:
        """Each cell as int ns UTC, checked to be strictly increasing."""
        try:
            ts = _TimestampParser().parse_all(texts)
        except (ValueError, OverflowError):
            parse = _TimestampParser()
            k = next(k for k, text in enumerate(texts) if not _parses(parse, text))
            raise self.fail_at(
                k, col, "an ISO 8601 date or datetime (naive = UTC)", texts[k]
            ) from None
        if any(map(ge, ts, islice(ts, 1, None))):
            k = next(k for k in range(1, len(ts)) if ts[k] <= ts[k - 1])
            raise self.fail_at(
                k,
                col,
                f"a time after {texts[k - 1]!r} of the previous bar (strictly increasing)",
                texts[k],
            )
        return ts

    def numbers(
        self, columns: list[tuple[str, ...]], cols: tuple[int, ...], what: str
    ) -> tuple[int, list[list[int]]]:
        """Precision of ``cols`` (max significant decimals) and those columns as exact ints.

        Nearly every cell of a real file is a plain literal (unsigned digits, optional
        point), so one regex pass validates a whole plain column and :func:`_plain_units`
        converts it; that equals ``parse_fixed`` (a test holds them equal on every shared
        file). Other cells (signs, exponents like the ``9e-05`` volumes pandas writes,
        garbage) are checked one by one and parsed by ``parse_fixed`` itself.
        """
        odd: set[str] = set()
        precision = 0
        for col in cols:
            joined = "\n".join(columns[col])
            if not _PLAIN_COLUMN.fullmatch(joined):
                odd.update(_ODD_LINE.findall(joined))
                joined = _ODD_LINE.sub("", joined)  # odd cells must not count as decimals
            precision = max(precision, _max_decimals(joined))
        bad: set[str] = set()
        for text in odd:
            try:
                precision = max(precision, _decimals(text))
            except ValueError:
                bad.add(text)
        if bad:
            k, col = self.first_cell(columns, cols, bad)
            raise self.fail_at(k, col, f"a decimal number ({what})", columns[col][k])
        odd_values = {text: parse_fixed(text, precision) for text in odd}
        negative = {text for text, value in odd_values.items() if value < 0}
        if negative:
            k, col = self.first_cell(columns, cols, negative)
            raise self.fail_at(k, col, f"a non-negative {what}", columns[col][k])
        return precision, [_plain_units(columns[col], precision, odd_values) for col in cols]

    def first_cell(
        self, columns: list[tuple[str, ...]], cols: tuple[int, ...], texts: set[str]
    ) -> tuple[int, int]:
        """Row and column of the first cell (file order) among ``cols`` holding one of ``texts``."""
        ordered = sorted(cols)
        for k in range(len(columns[0])):
            for col in ordered:
                if columns[col][k] in texts:
                    return k, col
        raise AssertionError("cell not found")  # pragma: no cover

    def check_ranges(
        self,
        cols: tuple[int, int, int, int],
        columns: list[tuple[str, ...]],
        bars: tuple[list[int], list[int], list[int], list[int]],
    ) -> None:
        """Every bar has low <= open, close <= high (all shared data files satisfy it)."""
        for k, (o, h, lo, c) in enumerate(zip(*bars, strict=True)):
            if lo <= o <= h and lo <= c <= h:
                continue
            o_col, h_col, lo_col, c_col = cols
            low, high = columns[lo_col][k].strip(), columns[h_col][k].strip()
            if h < lo:
                raise self.fail_at(k, h_col, f"high >= low ({low})", columns[h_col][k])
            col, name = (o_col, "open") if not lo <= o <= h else (c_col, "close")
            raise self.fail_at(
                k, col, f"{name} within [low, high] = [{low}, {high}]", columns[col][k]
            )


def _parses(parse: _TimestampParser, text: str) -> bool:
    try:
        parse(text)
    except (ValueError, OverflowError):
        return False
    return True


def _plain_units(texts: tuple[str, ...], scale: int, odd: dict[str, int]) -> list[int]:
    """Cells as ints of ``10**-scale``: plain literals by padding or cutting the fraction to
    ``scale`` digits (what is cut is zeros: ``scale`` covers every cell), others from ``odd``.

    A plain loop: measured faster than ``Decimal`` or regex pipelines on 30k-row columns.
    """
    pad = "0" * scale
    values: list[int] = []
    append = values.append
    if odd:
        get = odd.get
        for text in texts:
            value = get(text)
            if value is None:
                whole, _, fraction = text.partition(".")
                value = int(whole + (fraction + pad)[:scale] or "0")
            append(value)
        return values
    for text in texts:
        whole, _, fraction = text.partition(".")
        append(int(whole + (fraction + pad)[:scale] or "0"))
    return values


def _max_decimals(joined: str) -> int:
    """Most significant decimals of any literal in a newline-joined plain column.

    One regex search per candidate count is far cheaper than listing every fraction.
    """
    decimals = 0
    while re.search(rf"\.\d{{{decimals}}}\d*[1-9]", joined, re.ASCII):
        decimals += 1
    return decimals


def _decimals(text: str) -> int:
    """Significant decimals of a decimal literal (``"100.50" -> 1``); ValueError otherwise."""
    s = text.strip()
    body = s[1:] if s.startswith(("+", "-")) else s
    whole, _, frac = body.partition(".")
    if (
        body.isascii()
        and (whole.isdigit() or (not whole and frac))
        and (not frac or frac.isdigit())
    ):
        return len(frac.rstrip("0"))
    # Exponent forms ("1.5e-05") are rare but legal in CSV written from floats.
    try:
        number = Decimal(s)
    except InvalidOperation:
        raise ValueError(text) from None
    exponent = number.normalize().as_tuple().exponent
    if not isinstance(exponent, int) or "_" in s:  # NaN, Infinity; Decimal allows "1_000"
        raise ValueError(text)
    return max(0, -exponent)


class _Memo(dict[str, int]):
    """A dict that computes a missing entry with ``compute`` (so lookups can run in C)."""

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[str], int]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: str) -> int:
        value = self[key] = self.compute(key)
        return value


class _TimestampParser:
    """ISO 8601 text to int ns UTC, caching the date and the time-of-day halves.

    Bar files repeat a few thousand dates and (intraday) the same 1,440 minute-of-day
    strings, so splitting at the date/time separator and caching each half turns 30k
    datetime parses into a few thousand small ones. Exact integer arithmetic throughout.
    """

    __slots__ = ("_days", "_times")

    def __init__(self) -> None:
        self._days = _Memo(_day_ns)
        self._times = _Memo(_time_of_day_ns)

    def parse_all(self, texts: tuple[str, ...]) -> list[int]:
        """Every cell in order; ``ValueError`` if any does not parse (find it with ``()``)."""
        lengths = set(map(len, texts))
        if min(lengths) > 10 and set(map(itemgetter(10), texts)) <= {"T", " "}:
            days = map(self._days.__getitem__, map(itemgetter(slice(10)), texts))
            times = map(self._times.__getitem__, map(itemgetter(slice(11, None)), texts))
            return list(map(add, days, times))
        if lengths == {10}:
            return list(map(self._days.__getitem__, texts))
        return list(map(self, texts))

    def __call__(self, text: str) -> int:
        if len(text) > 10 and text[10] in "T ":
            return self._days[text[:10]] + self._times[text[11:]]
        if len(text) == 10:
            return self._days[text]
        moment = datetime.fromisoformat(text)  # other ISO forms ("20230301T0000Z")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // _MICROSECOND * 1000


def _day_ns(text: str) -> int:
    """Nanoseconds since epoch of midnight UTC of an ISO date (``2023-03-01``)."""
    return (date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL) * _NS_PER_DAY


def _time_of_day_ns(text: str) -> int:
    """Nanoseconds after midnight UTC of ``HH:MM[:SS[.ffffff]][offset]``; naive = UTC."""
    moment = time.fromisoformat(text)
    ns = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * _NS_PER_SECOND
    ns += moment.microsecond * 1000
    offset = moment.utcoffset()
    if offset is not None:
        ns -= offset // _MICROSECOND * 1000
    return ns


def _read_text(path: str) -> str:
    """The file's text, gunzipped when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataFormatError(path, None, None, "an existing file", "no such file") from None
    except OSError as exc:
        raise DataFormatError(path, None, None, "a readable file", exc.strerror) from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(path, None, None, "a complete gzip stream", str(exc)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start : exc.end].hex()
        raise DataFormatError(path, line, None, "UTF-8 text", f"bytes 0x{bad}") from None


def _symbol_from_file_name(path: str) -> str:
    """First file-name token that looks like a symbol (``fxcm_gbpusd-m1-bid`` -> ``GBPUSD``)."""
    stem = Path(path).name.split(".")[0]
    for token in re.split(r"[_\-\s]+", stem):
        lowered = token.lower()
        if (
            lowered in _NOT_SYMBOL
            or not any(ch.isalpha() for ch in token)
            or _BAR_SIZE.fullmatch(token)
            or lowered.endswith("version")
        ):
            continue
        return token.upper()
    return stem.upper() or "UNKNOWN"


def _quote_of(symbol: str) -> str:
    """Quote currency of a pair symbol (``USDJPY`` -> ``JPY``, ``BTCUSDT`` -> ``USDT``)."""
    for quote in _QUOTE_CURRENCIES:
        if symbol.endswith(quote) and len(symbol) - len(quote) >= 3:
            return quote
    return "USD"
