"""Malformed captures fail with one line naming file, line, field, expected and got."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from predator.market.depth_loader import check_binance_capture, read_binance_capture
from predator.market.errors import DataFormatError
from predator.testkit import shared_data_dir

SPOT_0808 = shared_data_dir() / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"


@pytest.fixture(scope="module")
def head() -> list[bytes]:
    with gzip.open(SPOT_0808, "rb") as handle:
        return [handle.readline() for _ in range(300)]


def write(path: Path, lines: list[bytes], *, cut: bool = False) -> Path:
    data = gzip.compress(b"".join(lines))
    path.write_bytes(data[: len(data) // 2] if cut else data)
    return path


READERS: list[Callable[[Path], object]] = [
    lambda p: check_binance_capture([p]),
    lambda p: list(read_binance_capture([p])),
]


def depth_line(head: list[bytes]) -> bytes:
    return next(line for line in head[20:] if b"@depth" in line)


@pytest.mark.parametrize("read", READERS)
def test_truncated_gzip(tmp_path: Path, head: list[bytes], read: Callable[[Path], object]) -> None:
    path = write(tmp_path / "cut.jsonl.gz", head, cut=True)
    with pytest.raises(DataFormatError) as caught:
        read(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    assert message.endswith("expected a complete gzip stream, got 'truncated file'")


@pytest.mark.parametrize("read", READERS)
def test_garbage_line(tmp_path: Path, head: list[bytes], read: Callable[[Path], object]) -> None:
    path = write(tmp_path / "g.jsonl.gz", [*head[:50], b"hello world\n", *head[50:]])
    with pytest.raises(
        DataFormatError, match=r"g.jsonl.gz:51: expected '<receive_ns> <json>', got 'hello world'$"
    ):
        read(path)


def test_broken_json(tmp_path: Path, head: list[bytes]) -> None:
    path = write(tmp_path / "j.jsonl.gz", [*head[:9], head[12][:80] + b"\n", *head[9:]])
    with pytest.raises(DataFormatError, match=r"j.jsonl.gz:10: expected one JSON message"):
        check_binance_capture([path])


@pytest.mark.parametrize("read", READERS)
def test_missing_field(tmp_path: Path, head: list[bytes], read: Callable[[Path], object]) -> None:
    bad = depth_line(head).replace(b'"U":', b'"X":')
    path = write(tmp_path / "m.jsonl.gz", [*head[:50], bad, *head[50:]])
    with pytest.raises(
        DataFormatError,
        match=r"m.jsonl.gz:51: column 'U': expected the field to be present, got 'nothing'$",
    ):
        read(path)


def test_wrong_type(tmp_path: Path, head: list[bytes]) -> None:
    bad = depth_line(head).replace(b'"u":', b'"u":"x","v":')
    path = write(tmp_path / "t.jsonl.gz", [*head[:50], bad, *head[50:]])
    with pytest.raises(
        DataFormatError, match=r"t.jsonl.gz:51: column 'u': expected int, got 'str'$"
    ):
        check_binance_capture([path])


def test_price_with_more_decimals_than_the_stream(tmp_path: Path) -> None:
    # The decimals are learnt from the first levels (spot prices: 2); a price written
    # with more, later on, is refused rather than rounded.
    with gzip.open(SPOT_0808, "rb") as handle:
        lines = [handle.readline() for _ in range(2500)]
    bad = depth_line(lines[2000:]).replace(b'000000"', b'0000001"', 1)
    path = write(tmp_path / "d.jsonl.gz", [*lines[:2000], bad, *lines[2000:]])
    with pytest.raises(
        DataFormatError,
        match=r"d.jsonl.gz:2001: column 'b': expected an unsigned decimal with at most 2 "
        r"decimals, got '\d+\.\d{9}'$",
    ):
        check_binance_capture([path])


def test_a_file_of_another_format(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n")
    with pytest.raises(
        DataFormatError, match=r"bars.csv:1: expected '<receive_ns> <json>', got 'date,open"
    ):
        check_binance_capture([path])
    with pytest.raises(
        DataFormatError, match=r"nope.jsonl.gz: expected an existing file, got 'no such file'"
    ):
        check_binance_capture([tmp_path / "nope.jsonl.gz"])
