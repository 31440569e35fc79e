"""Specs for ``load_bars``: every OHLCV file of the shared data pack, and every way to fail.

Expected counts, spans and prices come from the data pack's README and the files' own first
and last rows; error specs write small files to ``tmp_path``.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from predator.core.numbers import parse_fixed
from predator.market import Bar, BarFeed, DataFormatError, load_bars
from predator.testkit import shared_data_dir
from predator.testkit.data import ENV_VAR

DATA = shared_data_dir()
BTC_1M = "binanceus_BTCUSDT_1m_20230301_20230321.csv.gz"


@functools.cache
def loaded(name: str) -> BarFeed:
    """Each shared file is loaded once per test session (feeds are read-only)."""
    return load_bars(DATA / name)


def ns(iso: str) -> int:
    """Nanoseconds since epoch of an ISO time (naive = UTC), computed independently."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (moment - epoch) // timedelta(microseconds=1) * 1000


# file, format, symbol, bars, first ts, last ts, price precision, first close, last close,
# volume precision (None = no volume column)
REAL_FILES = [
    ("backtesting_py_GOOG_daily_2004-2013.csv", "backtesting.py", "GOOG", 2148,
     "2004-08-19", "2013-03-01", 2, 10034, 80619, 0),
    ("backtesting_py_BTCUSD_monthly_2012-2024.csv", "backtesting.py", "BTCUSD", 156,
     "2012-01-31", "2024-12-31", 2, 555, 9338100, 11),
    ("backtesting_py_EURUSD_hourly_2017-2018.csv", "backtesting.py", "EURUSD", 5000,
     "2017-04-19 09:00", "2018-02-07 15:00", 5, 107219, 122904, 0),
    ("backtrader_orcl-1995-2014_2015version.csv", "yahoo", "ORCL", 5036,
     "1995-01-03", "2014-12-31", 2, 4287, 4497, 0),
    ("backtrader_orcl-1995-2014_2015version_reordered.csv", "yahoo", "ORCL", 5036,
     "1995-01-03", "2014-12-31", 2, 4287, 4497, 0),
    ("backtrader_orcl-1995-2014_HEAD.csv", "yahoo", "ORCL", 5036,
     "1995-01-03", "2014-12-31", 6, 2117284, 44970001, 0),
    (BTC_1M, "binance-klines", "BTCUSDT", 30240,
     "2023-03-01 00:00", "2023-03-21 23:59", 2, 2314231, 2811026, 6),
    ("fxcm_gbpusd-m1-bid-2012.csv.gz", "fxcm", "GBPUSD", 30117,
     "2012-02-01 00:00", "2012-03-01 00:00", 5, 157576, 159208, None),
    ("fxcm_gbpusd-m1-ask-2012.csv.gz", "fxcm", "GBPUSD", 30117,
     "2012-02-01 00:00", "2012-03-01 00:00", 5, 157585, 159216, None),
    ("fxcm_usdjpy-m1-bid-2013.csv.gz", "fxcm", "USDJPY", 28761,
     "2013-02-01 00:00", "2013-03-01 00:00", 3, 91653, 92539, None),
    ("fxcm_usdjpy-m1-ask-2013.csv.gz", "fxcm", "USDJPY", 28761,
     "2013-02-01 00:00", "2013-03-01 00:00", 3, 91655, 92540, None),
    ("cme_6EH4_1min_202401.csv.gz", "cme", "6EH4", 29996,
     "2024-01-01 23:01", "2024-01-31 23:59", 5, 110780, 108230, 0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "fmt", "symbol", "count", "first", "last", "precision", "close0", "close1", "vol"),
    REAL_FILES,
    ids=[row[0] for row in REAL_FILES],
)
def test_reads_every_shared_ohlcv_file_with_exact_counts_spans_and_closes(
    name: str,
    fmt: str,
    symbol: str,
    count: int,
    first: str,
    last: str,
    precision: int,
    close0: int,
    close1: int,
    vol: int | None,
) -> None:
    feed = loaded(name)
    assert feed.format == fmt
    assert feed.instrument.symbol == symbol
    assert len(feed) == count
    assert (feed.first_ts, feed.last_ts) == (ns(first), ns(last))
    assert feed.instrument.price_precision == precision
    closes = feed.closes()
    assert (closes[0], closes[-1]) == (close0, close1)
    assert feed.has_volume == (vol is not None)
    assert feed.volume_precision == (vol or 0)


def test_reads_goog_daily_with_exact_prices() -> None:
    feed = loaded("backtesting_py_GOOG_daily_2004-2013.csv")
    first = next(iter(feed))
    # 2004-08-19,100,104.06,95.96,100.34,22351900: "100" is 100.00 at precision 2
    assert first == Bar(
        ts=ns("2004-08-19"),
        symbol="GOOG",
        open=10000,
        high=10406,
        low=9596,
        close=10034,
        volume=22351900,
    )
    assert feed.instrument.quote_currency == "USD"


def test_dates_without_time_are_midnight_utc() -> None:
    feed = loaded("backtrader_orcl-1995-2014_2015version.csv")
    assert feed.first_ts == 789_091_200 * 10**9  # 1995-01-03T00:00:00Z (9,133 days)
    assert all(ts % (86_400 * 10**9) == 0 for ts in feed.timestamps())


def test_orcl_2015_file_and_its_reordered_copy_give_identical_bars() -> None:
    original = loaded("backtrader_orcl-1995-2014_2015version.csv")
    reordered = loaded("backtrader_orcl-1995-2014_2015version_reordered.csv")
    assert list(original) == list(reordered)
    # Close, not Adj Close (2.00 on the first row), and Volume found by name in both
    assert next(iter(original)).close == 4287
    assert next(iter(reordered)).volume == 36301200


def test_fxcm_files_have_no_volume_so_bars_carry_zero_volume() -> None:
    feed = loaded("fxcm_usdjpy-m1-bid-2013.csv.gz")
    assert feed.instrument.quote_currency == "JPY"
    assert {bar.volume for bar in feed} == {0}


def test_fxcm_bid_and_ask_rows_align_one_to_one_by_timestamp() -> None:
    bid = loaded("fxcm_gbpusd-m1-bid-2012.csv.gz")
    ask = loaded("fxcm_gbpusd-m1-ask-2012.csv.gz")
    assert bid.timestamps() == ask.timestamps()


def test_btc_volumes_written_in_exponent_form_load_exactly() -> None:
    # 2023-03-11 10:14 has volume "9e-05" (pandas float repr) in the file
    feed = loaded(BTC_1M)
    assert feed.instrument.quote_currency == "USDT"
    bar = next(bar for bar in feed if bar.ts == ns("2023-03-11 10:14"))
    assert bar.volume == 90  # 0.000090 at volume precision 6
    assert bar.close == 2008161


@pytest.mark.parametrize("name", [row[0] for row in REAL_FILES])
def test_loaded_values_equal_parse_fixed_of_every_cell_and_satisfy_ohlc_ranges(name: str) -> None:
    # Independent reading (csv.DictReader + parse_fixed) of the same file; it also shows that
    # the real data obeys low <= open, close <= high, so the loader can enforce that rule.
    feed = loaded(name)
    raw = (DATA / name).read_bytes()
    text = (gzip.decompress(raw) if name.endswith(".gz") else raw).decode()
    rows = [{k.lower(): v for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
    columns = ["open", "high", "low", "close"] + (["volume"] if feed.has_volume else [])
    precision = {c: feed.instrument.price_precision for c in columns}
    precision["volume"] = feed.volume_precision
    cache: dict[tuple[str, str], int] = {}

    def exact(column: str, cell: str) -> int:
        key = (column, cell)
        if key not in cache:
            cache[key] = parse_fixed(cell, precision[column])
        return cache[key]

    for row, bar in zip(rows, feed, strict=True):
        o, h, lo, c, *v = (exact(column, row[column]) for column in columns)
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (o, h, lo, c, *(v or [0]))
        assert lo <= min(o, c) <= max(o, c) <= h


def test_iterating_twice_yields_the_same_bars() -> None:
    feed = loaded("backtesting_py_BTCUSD_monthly_2012-2024.csv")
    assert list(feed) == list(feed)
    assert isinstance(feed, BarFeed)
    assert all(isinstance(bar, Bar) and bar.symbol == "BTCUSD" for bar in feed)


def test_symbol_and_size_precision_come_from_the_arguments_when_given() -> None:
    feed = load_bars(DATA / BTC_1M, symbol="BTC-USDT", size_precision=5, quote_currency="USDT")
    assert feed.instrument.symbol == "BTC-USDT"
    assert feed.instrument.size_precision == 5
    assert next(iter(feed)).symbol == "BTC-USDT"


# --- general CSV input --------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, newline="")
    return path


GOOD = (
    "timestamp,open,high,low,close,volume\n"
    "2023-03-01 00:00:00,100,101.5,99,100.25,10\n"
    "2023-03-01 00:01:00,100.25,100.5,100,100.00,2.5\n"
)


def test_plain_timestamp_header_loads_with_precision_from_the_file(tmp_path: Path) -> None:
    feed = load_bars(write(tmp_path, GOOD, "SPY_1m.csv"))
    assert feed.format == "ohlcv"
    assert feed.instrument.symbol == "SPY"
    assert feed.instrument.price_precision == 2  # "100.00" counts as 0 significant decimals
    assert feed.volume_precision == 1
    assert feed.closes() == [10025, 10000]
    assert [bar.volume for bar in feed] == [100, 25]
    assert feed.first_ts == ns("2023-03-01 00:00")


def test_header_names_are_matched_case_insensitively_in_any_order(tmp_path: Path) -> None:
    text = "Close,Low,DateTime,High,Open,Extra\n1.5,1,2024-01-02,2,1.25,x\n"
    feed = load_bars(write(tmp_path, text))
    assert list(feed) == [
        Bar(ts=ns("2024-01-02"), symbol="BARS", open=125, high=200, low=100, close=150)
    ]


def test_offsets_are_converted_to_utc_and_naive_times_are_utc(tmp_path: Path) -> None:
    text = (
        "datetime,open,high,low,close\n"
        "2023-03-01T00:30:00,1,1,1,1\n"
        "2023-03-01T02:00:00+01:00,1,1,1,1\n"
        "2023-03-01T01:30:00.5Z,1,1,1,1\n"
    )
    feed = load_bars(write(tmp_path, text))
    assert feed.timestamps() == [
        ns("2023-03-01 00:30"),
        ns("2023-03-01 01:00"),
        ns("2023-03-01 01:30") + 500_000_000,
    ]


def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path: Path) -> None:
    path = tmp_path / "disguised.csv"
    path.write_bytes(gzip.compress(GOOD.encode()))
    assert len(load_bars(path)) == 2


def test_bom_crlf_and_blank_lines_are_tolerated(tmp_path: Path) -> None:
    text = "\ufeff" + GOOD.replace("\n", "\r\n") + "\r\n"
    assert load_bars(write(tmp_path, text)).closes() == [10025, 10000]


# --- errors: one line naming file, line, column and what was expected ------------------------


def load_error(path: Path) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        load_bars(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return info.value


def test_truncated_last_row_names_line_and_first_missing_column(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, GOOD + "2023-03-01 00:02:00,100,1"))
    assert "bars.csv:4: column 'low': expected 6 fields, got 3" in str(error)
    assert (error.line, error.column) == (4, "low")


def test_missing_close_column_names_required_and_found_columns(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "Date,Open,High,Low,Adj Close\n2024-01-02,1,2,1,1.5\n"))
    message = str(error)
    assert "bars.csv:1: column 'close': expected a 'close' column" in message
    assert "'Adj Close'" in message and "open, high, low, close" in message


def test_unrecognised_header_without_time_column_is_rejected(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "when,open,high,low,close\n2024-01-02,1,2,1,1\n"))
    assert "bars.csv:1: expected a time column" in str(error)
    assert "'when'" in str(error)


def test_non_numeric_price_names_line_and_column(tmp_path: Path) -> None:
    text = GOOD.replace("100.25,100.5,100,", "100.25,abc,100,")
    error = load_error(write(tmp_path, text))
    assert "bars.csv:3: column 'high': expected a decimal number (price), got 'abc'" in str(error)


def test_empty_price_cell_is_rejected(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, GOOD.replace(",100.00,", ",,")))
    assert "bars.csv:3: column 'close': expected a decimal number" in str(error)


def test_negative_price_is_rejected(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close\n2024-01-02,1,2,-1,1\n"
    error = load_error(write(tmp_path, text))
    assert "bars.csv:2: column 'low': expected a non-negative price, got '-1'" in str(error)


def test_negative_volume_is_rejected(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, GOOD.replace(",2.5\n", ",-2.5\n")))
    assert "bars.csv:3: column 'volume': expected a non-negative volume" in str(error)


def test_high_below_low_is_rejected(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close\n2024-01-02,1,2,1,1\n2024-01-03,1,1,2,1\n"
    error = load_error(write(tmp_path, text))
    assert "bars.csv:3: column 'high': expected high >= low (2), got '1'" in str(error)


def test_close_outside_the_bar_range_is_rejected(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close\n2024-01-02,1.5,2,1,2.01\n"
    error = load_error(write(tmp_path, text))
    assert "bars.csv:2: column 'close': expected close within [low, high] = [1, 2]" in str(error)


def test_open_outside_the_bar_range_is_rejected(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close\n2024-01-02,0.5,2,1,1\n"
    error = load_error(write(tmp_path, text))
    assert "bars.csv:2: column 'open': expected open within [low, high]" in str(error)


def test_bad_timestamp_names_line_and_time_column(tmp_path: Path) -> None:
    text = GOOD.replace("2023-03-01 00:01:00", "2023-13-01 00:01:00")
    error = load_error(write(tmp_path, text))
    message = str(error)
    assert "bars.csv:3: column 'timestamp': expected an ISO 8601 date or datetime" in message
    assert "'2023-13-01 00:01:00'" in message


def test_out_of_order_timestamps_are_rejected(tmp_path: Path) -> None:
    text = GOOD + "2023-03-01 00:00:30,100,100,100,100,1\n"
    error = load_error(write(tmp_path, text))
    message = str(error)
    assert "bars.csv:4: column 'timestamp': expected a time after '2023-03-01 00:01:00'" in message


def test_duplicate_timestamps_are_rejected(tmp_path: Path) -> None:
    text = GOOD + "2023-03-01 00:01:00,100,100,100,100,1\n"
    error = load_error(write(tmp_path, text))
    assert "bars.csv:4: column 'timestamp'" in str(error)
    assert "strictly increasing" in str(error)


def test_error_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    text = GOOD.replace("\n2023-03-01 00:01", "\n\n2023-03-01 00:01").replace(",2.5", ",x")
    error = load_error(write(tmp_path, text))
    assert "bars.csv:4: column 'volume'" in str(error)


def test_unnamed_time_column_is_named_by_its_position(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, ",Open,High,Low,Close\nyesterday,1,1,1,1\n"))
    assert "bars.csv:2: column '1': expected an ISO 8601 date" in str(error)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, ""))
    assert "bars.csv:1: expected a header line" in str(error)


def test_header_without_bars_is_rejected(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "timestamp,open,high,low,close\n"))
    assert "bars.csv:2: expected at least one bar" in str(error)


def test_missing_file_is_rejected_without_a_line(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nowhere.csv")
    assert error.line is None
    assert "nowhere.csv: expected an existing file" in str(error)


def test_truncated_gzip_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode())[:-12])
    assert "expected a complete gzip stream" in str(load_error(path))


def test_shared_data_dir_says_where_it_looked_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        shared_data_dir()
