"""Fast streaming decoder for Binance websocket captures (hftbacktest ``*.jsonl.gz``).

Each line is ``<local_receive_ns> <json>``: a REST depth snapshot or a combined-stream
``@depth`` diff, ``@bookTicker`` or ``@trade`` message. A file is inflated in large
blocks; each block of whole lines becomes one JSON array decoded by msgspec in one call,
and the price levels of all its snapshots and diffs are decoded in a second call straight
to exact ints (no per-level Python work, no float). Anything the fast path cannot read is
re-read line by line to name the first bad line, field and value.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Iterator
from itertools import chain, islice
from queue import Full, Queue
from typing import Any, BinaryIO

import msgspec
from msgspec import Raw, Struct

from predator.market.errors import DataFormatError

__all__ = [
    "CaptureChunk",
    "Depth",
    "Envelope",
    "Message",
    "Ticker",
    "Trade",
    "iter_capture",
    "raw_text",
    "to_units",
]

_BLOCK = 1 << 20  # compressed bytes read per step (~8 MB of text)
_EXACT_LIMIT = 1 << 53  # level values below this decode exactly (see _levels)
_GZIP_MAGIC = b"\x1f\x8b"
_LEVEL = re.compile(rb'\["\d+(?:\.(\d*))?","\d+(?:\.(\d*))?"\]')
_QUOTE = re.compile(rb'"b":"\d+(?:\.(\d*))?","B":"\d+(?:\.(\d*))?"')
_SAMPLE = 4000  # levels looked at to learn a stream's decimals


class Depth(Struct, tag_field="e", tag="depthUpdate", gc=False):
    """A ``depthUpdate`` diff; ``b``/``a`` are the raw level arrays."""

    U: int
    u: int
    b: Raw
    a: Raw
    pu: int = -1
    E: int = 0
    s: str = ""
    t: int = -1  # (not in the message: lets one dispatch serve every shape)


class Ticker(Struct, tag_field="e", tag="bookTicker", gc=False):
    """A ``bookTicker`` message: the venue's best bid/ask as of update ``u``."""

    u: int
    b: str
    B: str
    a: str
    A: str
    E: int = 0
    s: str = ""
    U: int = -1
    t: int = -1


class Trade(Struct, tag_field="e", tag="trade", gc=False):
    """A ``trade`` message; ``m`` is true when the buyer was the maker."""

    t: int
    p: str
    q: str
    m: bool
    T: int = 0
    s: str = ""
    U: int = -1


class Message(Struct, gc=False):
    """Any stream message, untagged (spot bookTicker messages carry no event type).

    A diff has ``U``, a trade ``t``, a ticker neither; a ticker's ``b``/``a`` are raw
    JSON strings (see :func:`raw_text`).
    """

    u: int = -1
    U: int = -1
    pu: int = -1
    b: Raw = Raw(b'""')
    a: Raw = Raw(b'""')
    B: str = ""
    A: str = ""
    t: int = -1
    p: str = ""
    q: str = ""
    m: bool = False
    E: int = 0
    T: int = 0
    s: str = ""


class Envelope(Struct, gc=False):
    """One line's JSON: a combined-stream message (``data``) or a REST snapshot."""

    data: Depth | Ticker | Trade | None = None
    lastUpdateId: int = -1  # noqa: N815 (Binance's name)
    bids: Raw = Raw(b"[]")
    asks: Raw = Raw(b"[]")


class UntaggedEnvelope(Struct, gc=False):
    """:class:`Envelope` for streams whose messages are not all typed (Binance spot)."""

    data: Message | None = None
    lastUpdateId: int = -1  # noqa: N815 (Binance's name)
    bids: Raw = Raw(b"[]")
    asks: Raw = Raw(b"[]")


class _LeanTicker(Struct, tag_field="e", tag="bookTicker", gc=False):
    u: int
    b: str
    B: str
    a: str
    A: str
    U: int = -1
    t: int = -1


class _LeanTrade(Struct, tag_field="e", tag="trade", gc=False):
    t: int
    U: int = -1


class _LeanMessage(Struct, gc=False):
    u: int = -1
    U: int = -1
    pu: int = -1
    b: Raw = Raw(b'""')
    a: Raw = Raw(b'""')
    B: str = ""
    A: str = ""
    t: int = -1
    s: str = ""


class _LeanEnvelope(Struct, gc=False):
    """:class:`Envelope` without the fields a book check never reads (trade details)."""

    data: Depth | _LeanTicker | _LeanTrade | None = None
    lastUpdateId: int = -1  # noqa: N815 (Binance's name)
    bids: Raw = Raw(b"[]")
    asks: Raw = Raw(b"[]")


class _LeanUntaggedEnvelope(Struct, gc=False):
    data: _LeanMessage | None = None
    lastUpdateId: int = -1  # noqa: N815 (Binance's name)
    bids: Raw = Raw(b"[]")
    asks: Raw = Raw(b"[]")


AnyEnvelope = Envelope | UntaggedEnvelope | _LeanEnvelope | _LeanUntaggedEnvelope


def raw_text(value: Raw | str) -> str:
    """A JSON string field decoded lazily as :class:`msgspec.Raw` (or already a str)."""
    if isinstance(value, str):
        return value
    return bytes(value)[1:-1].decode()


_TAGGED = msgspec.json.Decoder(list[tuple[int, Envelope]])
_UNTAGGED = msgspec.json.Decoder(list[tuple[int, UntaggedEnvelope]])
_LEAN_TAGGED = msgspec.json.Decoder(list[tuple[int, _LeanEnvelope]])
_LEAN_UNTAGGED = msgspec.json.Decoder(list[tuple[int, _LeanUntaggedEnvelope]])
_LINE = msgspec.json.Decoder(UntaggedEnvelope)
_SIDES = msgspec.json.Decoder(list[list[list[int]]], strict=False)
_SIDE = msgspec.json.Decoder(list[tuple[str, str]])


class CaptureChunk(Struct, gc=False):
    """Decoded whole lines of one file: ``items[i]`` is line ``first_line + i``.

    ``sides`` holds the flat ``[price, size, ...]`` int levels of every snapshot and diff
    in the block, bids then asks, in line order.
    """

    path: str
    first_line: int
    items: list[tuple[int, AnyEnvelope]]
    sides: list[list[int]]
    price_decimals: int = 0
    size_decimals: int = 0
    written_price: int = 0
    written_size: int = 0


def to_units(text: str, decimals: int) -> int:
    """An unsigned decimal string as an int of ``10**-decimals`` units; ValueError if inexact.

    >>> to_units("61837.63000000", 2), to_units("0.5", 3)
    (6183763, 500)
    """
    whole, _, fraction = text.partition(".")
    if len(fraction) > decimals:
        if fraction[decimals:].strip("0"):
            raise ValueError(text)
        fraction = fraction[:decimals]
    digits = whole + fraction.ljust(decimals, "0")
    if not (whole and digits.isdigit() and digits.isascii()):
        raise ValueError(text)
    return int(digits)


def units_reader(decimals: int, written: int) -> Callable[[str], int]:
    """A fast :func:`to_units` for strings written with ``written`` decimals (a stream's
    fixed format), falling back to :func:`to_units` for anything else."""
    drop = written - decimals
    if written <= 0 or drop < 0:
        return lambda text: to_units(text, decimals)
    tail = "0" * drop
    end = -drop or None

    def read(text: str) -> int:
        if len(text) > written and text[-written - 1] == "." and text.endswith(tail):
            digits = text[: -written - 1] + text[-written:end]
            if digits.isdigit() and digits.isascii():
                return int(digits)
        return to_units(text, decimals)

    return read


class _Precision:
    """The decimals of a capture's prices and sizes.

    Prices are on the instrument's tick: ``price`` is the decimals the first levels need
    (BTCUSDT spot 2, USD-M 1), unless given. Sizes keep the decimals the stream writes
    (``size``: spot 8, USD-M 3): odd lots far from the top need more than the step.
    ``written_*`` are the decimals the stream writes; they bound the exact range of the
    fast level decoder (see :func:`_levels`).
    """

    __slots__ = ("limit", "price", "size", "written_price", "written_size")

    def __init__(self, price: int | None, size: int | None) -> None:
        self.price = price
        self.size = size
        self.written_price = 0
        self.written_size = 0
        self.limit = _EXACT_LIMIT

    def detect(self, text: bytes) -> bool:
        """Learn the decimals from the first levels (or quotes) of ``text``; False if none."""
        if self.written_price or self.written_size:
            return True
        pairs = [m.groups() for m in islice(_LEVEL.finditer(text), _SAMPLE)]
        if not pairs:
            pairs = [m.groups() for m in islice(_QUOTE.finditer(text), _SAMPLE)]
        if not pairs:
            return False
        prices = [p or b"" for p, _q in pairs]
        sizes = [q or b"" for _p, q in pairs]
        self.written_price = max(map(len, prices))
        self.written_size = max(map(len, sizes))
        if self.price is None:
            self.price = max(len(p.rstrip(b"0")) for p in prices)
        if self.size is None:
            self.size = self.written_size
        # "61837.63000000e2" is read as 6183763000000 * 10**-6: exact while that
        # mantissa stays below 2**53.
        self.limit = _EXACT_LIMIT // 10 ** max(self.written_price - self.price, 0)
        return True


def iter_capture(
    paths: list[str],
    price_decimals: int | None = None,
    size_decimals: int | None = None,
    *,
    read_ahead: bool = False,
    lean: bool = False,
) -> Iterator[CaptureChunk]:
    """Decode the files in order, block by block (memory stays at a few blocks).

    ``read_ahead`` inflates the next block on a helper thread while this one is decoded
    (for tools; the simulation runtime keeps to one thread). ``lean`` skips what a book
    check never reads (trade prices, sizes and times; exchange times of quotes).
    """
    precision = _Precision(price_decimals, size_decimals)
    decoders: list[msgspec.json.Decoder[Any]] = (
        [_LEAN_TAGGED, _LEAN_UNTAGGED] if lean else [_TAGGED, _UNTAGGED]
    )  # the one that worked last goes first
    for path in paths:
        line = 1
        blocks = _inflated(_open_capture(path))
        if read_ahead:
            blocks = _read_ahead(blocks)
        try:
            for text in blocks:
                chunk = _decode_block(path, line, text, precision, decoders)
                line += len(chunk.items)
                yield chunk
        except _Broken as exc:
            raise DataFormatError(path, line, None, exc.expected, exc.got) from None


class _Broken(Exception):
    """The compressed stream is corrupt or cut short (the caller knows the line)."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected, got)
        self.expected = expected
        self.got = got


def _open_capture(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataFormatError(path, None, None, "an existing file", "no such file") from None
    except IsADirectoryError:
        raise DataFormatError(path, None, None, "a file", "a directory") from None
    except OSError as exc:
        raise DataFormatError(path, None, None, "a readable file", exc.strerror) from None


def _inflated(handle: BinaryIO, block: int = _BLOCK) -> Iterator[bytes]:
    """Whole lines from ``handle`` in large blocks (gzip or plain), each ending with a newline.

    ``block``: compressed bytes read per step.

    Raises :class:`_Broken` for corrupt or truncated gzip data.
    """
    with handle:
        head = handle.read(2)
        handle.seek(0)
        inflate = zlib.decompressobj(wbits=31) if head == _GZIP_MAGIC else None
        rest = b""
        while True:
            raw = handle.read(block)
            if not raw:
                break
            try:
                text = rest + (inflate.decompress(raw) if inflate is not None else raw)
            except zlib.error as exc:
                raise _Broken("intact gzip data", f"corrupt ({exc})") from None
            cut = text.rfind(b"\n") + 1
            if cut:
                yield text[:cut]
            rest = text[cut:]
        if inflate is not None and not inflate.eof:
            raise _Broken("a complete gzip stream", "truncated file")
        if rest:
            yield rest + b"\n"


def _read_ahead(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """``blocks``, produced by a helper thread one block ahead of the consumer.

    zlib releases the GIL while it inflates, so the next block is decompressed while this
    one is decoded. Output and errors are exactly those of ``blocks``.
    """
    queue: Queue[tuple[bytes | None, BaseException | None]] = Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for block in blocks:
                while not stop.is_set():
                    try:
                        queue.put((block, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((None, None))
        except BaseException as exc:  # handed to the consumer, re-raised there
            queue.put((None, exc))

    worker = threading.Thread(target=produce, name="capture-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            block, error = queue.get()
            if error is not None:
                raise error
            if block is None:
                return
            yield block
    finally:
        stop.set()
        worker.join()


def _frame(text: bytes) -> bytes:
    """``ts json\\n...`` -> one JSON array of ``[ts, json]`` pairs (compact JSON only)."""
    return b"[[" + text[:-1].replace(b" ", b",").replace(b"\n", b"],[") + b"]]"


def _decode_block(
    path: str,
    first_line: int,
    text: bytes,
    precision: _Precision,
    decoders: list[msgspec.json.Decoder[Any]],
) -> CaptureChunk:
    framed = _frame(text)
    items: list[tuple[int, AnyEnvelope]] | None = None
    for decoder in list(decoders):
        try:
            items = decoder.decode(framed)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if decoder is not decoders[0]:
            decoders.reverse()
        break
    if items is None:
        items = _decode_lines(path, first_line, text)  # raises on the first bad line
    raws: list[Raw] = []
    for index, (_ts, envelope) in enumerate(items):
        data: Any = envelope.data
        if data is None:
            if envelope.lastUpdateId < 0:
                _explain(path, first_line + index, text.split(b"\n")[index])
            raws.append(envelope.bids)
            raws.append(envelope.asks)
        elif data.U != -1:
            raws.append(data.b)
            raws.append(data.a)
        elif data.t == -1 and not (data.B and data.A and data.u != -1):
            # Untagged decoding lets anything through; a ticker must look like one.
            _explain(path, first_line + index, text.split(b"\n")[index])
    if not raws:
        precision.detect(text)
        sides: list[list[int]] = []
    elif not precision.detect(text):
        raise DataFormatError(path, first_line, None, "price levels as [price, size] strings")
    else:
        sides = _levels(path, first_line, items, raws, precision)
    return CaptureChunk(
        path=path,
        first_line=first_line,
        items=items,
        sides=sides,
        price_decimals=precision.price or 0,
        size_decimals=precision.size or 0,
        written_price=precision.written_price,
        written_size=precision.written_size,
    )


def _levels(
    path: str,
    first_line: int,
    items: list[tuple[int, AnyEnvelope]],
    raws: list[Raw],
    p: _Precision,
) -> list[list[int]]:
    """Decode all level arrays at once into flat exact ints.

    Each ``"61837.63000000"`` gets the stream's decimals as an exponent
    (``"61837.63000000e2"``), which msgspec's lax mode reads as the int 6183763 and
    refuses when it is not an int (more decimals than the stream has). That path is exact
    while the written digits stay below 2**53 (``_Precision.limit``); a block holding a
    larger value is re-read exactly instead.
    """
    blob = b"[" + b",".join(raws) + b"]"  # Raw is a buffer
    price_exp = b"e%d" % (p.price or 0)
    size_exp = b"e%d" % (p.size or 0)
    blob = (
        blob.replace(b'","', price_exp + b'","')
        .replace(b'"],["', size_exp + b'","')
        .replace(b'"]]', size_exp + b'"]]')
    )
    try:
        sides = _SIDES.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _exact_levels(path, first_line, items, raws, p)
    flat = [side[0] if side else [] for side in sides]
    nonempty = [side for side in flat if side]
    if nonempty and max(chain.from_iterable(nonempty)) >= p.limit:
        # Sizes are exact up to 2**53; prices (read with fewer decimals than written)
        # up to the limit. Look at each before giving up on the fast path.
        prices = max(chain.from_iterable(side[0::2] for side in nonempty))
        sizes = max(chain.from_iterable(side[1::2] for side in nonempty))
        if prices >= p.limit or sizes >= _EXACT_LIMIT:
            return _exact_levels(path, first_line, items, raws, p)
    return flat


def _exact_levels(
    path: str,
    first_line: int,
    items: list[tuple[int, AnyEnvelope]],
    raws: list[Raw],
    p: _Precision,
) -> list[list[int]]:
    """The slow, exact level reader; names the line and value of the first bad level."""
    owners: list[int] = []
    for index, (_ts, envelope) in enumerate(items):
        if envelope.data is None or envelope.data.U != -1:
            owners += [index, index]
    sides: list[list[int]] = []
    for number, raw in enumerate(raws):
        line = first_line + owners[number]
        field = ("b", "a")[number % 2]
        try:
            levels = _SIDE.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DataFormatError(
                path, line, field, "levels as [[price, size], ...] strings", str(exc)
            ) from None
        flat: list[int] = []
        for price, size in levels:
            for text, decimals in ((price, p.price), (size, p.size)):
                try:
                    flat.append(to_units(text, decimals))  # type: ignore[arg-type]
                except ValueError:
                    expected = f"an unsigned decimal with at most {decimals} decimals"
                    raise DataFormatError(path, line, field, expected, text) from None
        sides.append(flat)
    return sides


def _decode_lines(path: str, first_line: int, text: bytes) -> list[tuple[int, AnyEnvelope]]:
    """Line-by-line decoding: a clear error for the first line that is not a capture line."""
    items: list[tuple[int, AnyEnvelope]] = []
    for offset, line in enumerate(text.split(b"\n")[:-1]):
        number = first_line + offset
        stamp, space, body = line.partition(b" ")
        if not space or not stamp.isdigit():
            got = line[:40].decode("utf-8", "replace")
            raise DataFormatError(path, number, None, "'<receive_ns> <json>'", got)
        try:
            envelope = _LINE.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            _explain(path, number, line)
            raise  # unreachable: _explain raises
        items.append((int(stamp), envelope))
    return items


_STRICT_LINE = msgspec.json.Decoder(Envelope)


def _explain(path: str, number: int, line: bytes) -> None:
    """Raise the precise error for a line that decoded but is no capture message."""
    body = line.partition(b" ")[2]
    if b'"e":' not in body and b"@bookTicker" in body:  # spot tickers carry no type
        body = body.replace(b'"data":{', b'"data":{"e":"bookTicker",', 1)
    try:
        envelope = _STRICT_LINE.decode(body)
    except msgspec.ValidationError as exc:
        raise _validation_error(path, number, str(exc)) from None
    except msgspec.DecodeError as exc:
        got = body[:40].decode("utf-8", "replace")
        raise DataFormatError(path, number, None, f"one JSON message ({exc})", got) from None
    if envelope.data is None:
        expected = "a depth snapshot (lastUpdateId, bids, asks) or a stream message (data)"
        raise DataFormatError(path, number, None, expected, body[:40].decode("utf-8", "replace"))
    raise DataFormatError(path, number, None, "a depth diff, a trade or a bookTicker message")


def _validation_error(path: str, number: int, message: str) -> DataFormatError:
    """msgspec's "Expected `int`, got `str` - at `$.data.U`" as a DataFormatError."""
    what, _, where = message.partition(" - at ")
    column = where.strip("`").removeprefix("$").removeprefix(".").removeprefix("data")
    column = column.removeprefix(".")
    missing = re.match(r"Object missing required field `(\w+)`", what)
    if missing:
        name = f"{column}.{missing.group(1)}" if column else missing.group(1)
        return DataFormatError(path, number, name, "the field to be present", "nothing")
    wanted = re.match(r"Expected `([^`]+)`, got `([^`]+)`", what)
    if wanted:
        return DataFormatError(path, number, column or None, wanted.group(1), wanted.group(2))
    return DataFormatError(path, number, column or None, what[:1].lower() + what[1:])
