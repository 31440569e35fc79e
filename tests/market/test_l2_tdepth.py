"""Binance T_DEPTH archive CSVs (format fixtures: the update ids do not follow the snapshot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from predator.market.depth_loader import detect_format, read_tdepth
from predator.market.errors import DataFormatError
from predator.market.l2 import BookDelta, BookSnapshot
from predator.testkit import shared_data_dir

DATA = shared_data_dir()
SNAP = DATA / "binance_futures_btcusdt_depth_snap_20221101.csv"
UPDATE = DATA / "binance_futures_btcusdt_depth_update_20221101.csv"


def test_snapshot_rows_become_one_book_snapshot() -> None:
    (snapshot,) = list(read_tdepth(SNAP))
    assert isinstance(snapshot, BookSnapshot)
    assert snapshot.symbol == "BTCUSDT" and snapshot.last_update_id == 2098021528332
    assert snapshot.ts == 1667346579146 * 10**6
    assert len(snapshot.bids) == 100 and snapshot.asks == ()
    assert snapshot.bids[0] == (2037700, 1770)  # 20377.00 x 1.770, first row
    assert snapshot.bids[-1] == (2036590, 207)  # 20365.90 x 0.207, last row


def test_update_rows_become_one_delta_with_pu() -> None:
    (delta,) = list(read_tdepth(UPDATE))
    assert isinstance(delta, BookDelta)
    assert (delta.first_update_id, delta.last_update_id, delta.prev_update_id) == (
        2098041693435,
        2098041696700,
        2098041693400,
    )
    assert (len(delta.bids), len(delta.asks)) == (23, 77)
    assert delta.asks[0] == (2047280, 0)  # first row: 20472.80 deleted
    assert delta.asks[-1] == (2087910, 10249)  # last row: 20879.10 x 10.249


def test_format_detection() -> None:
    assert detect_format(SNAP) == detect_format(UPDATE) == "binance-tdepth"
    assert detect_format(DATA / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz") == (
        "binance-capture"
    )
    assert detect_format(DATA / "lobster_AAPL_2012-06-21_first998_message_10.csv") == (
        "lobster-message"
    )
    assert detect_format(DATA / "lobster_AAPL_2012-06-21_first998_orderbook_10.csv") == (
        "lobster-orderbook"
    )
    with pytest.raises(DataFormatError, match="expected a Binance capture, a T_DEPTH CSV"):
        detect_format(DATA / "backtesting_py_GOOG_daily_2004-2013.csv")


def test_bad_tdepth_rows(tmp_path: Path) -> None:
    path = tmp_path / "depth.csv"
    header = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu\n"
    path.write_text(
        header + "BTCUSDT,1,2,2,b,snap,20377.00,1.770,-1\nBTCUSDT,1,2,2,x,snap,1.00,1.000,-1\n"
    )
    with pytest.raises(
        DataFormatError, match=r"depth.csv:3: column 'side': expected 'a' or 'b', got 'x'"
    ):
        list(read_tdepth(path))
    path.write_text(
        header + "BTCUSDT,1,2,2,b,snap,1.00,1.000,-1\nBTCUSDT,1,2,2,b,snap,2.001,1.770,-1\n"
    )
    with pytest.raises(
        DataFormatError,
        match=r"depth.csv:3: column 'price': expected an unsigned decimal with at most 2 "
        r"decimals, got '2.001'",
    ):
        list(read_tdepth(path))
