"""Types of the compiled fast path of the book check (_fastbook.c)."""

from collections.abc import Sequence
from typing import Any

def scan_block(
    text: bytes, price_decimals: int, size_decimals: int, last_ticker_id: int, /
) -> (
    tuple[
        int,
        int,
        int,
        int,
        list[tuple[int, int, int, int, int, int, list[int], list[int], int]],
        list[Any],
        list[int],
        int,
        str | None,
    ]
    | None
): ...
def update_side(
    book: dict[int, int], levels: Sequence[int], best: int | None, dirty: bool, bids: bool, /
) -> tuple[int | None, bool]: ...
