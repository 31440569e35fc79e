"""The L2 replay node on the real BTCUSDT spot capture: wiring, fail-closed data, determinism.

Runs replay the first minute of the 2024-08-08 capture (a temp copy of its first lines)
through the kernel: the venue matches on each event, the node's feed gives the risk
engine and the strategies their view, a depth gap makes the risk layer deny new exposure
until a snapshot resynchronises the book.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from predator.ledger import Journal, JournalRecord
from predator.market import (
    BookDelta,
    BookSnapshot,
    BookSync,
    Instrument,
    OrderBook,
    QuoteTick,
    TradeTick,
    load_bars,
    read_binance_capture,
)
from predator.node import Backtest, BacktestConfig
from predator.node.l2_capture import CaptureError, capture_instrument
from predator.node.l2_feed import quote_mid
from predator.node.l2_options import parse_latency, parse_queue_model
from predator.node.l2_run import L2Replay, ReplayConfig, ReplayError, ReplayResult
from predator.strategy import BUILTINS, CancelOrder, Strategy
from predator.testkit import shared_data_dir
from predator.validation import audit_journal
from predator.venue import ConstantDelay, ProbQueue, RiskAverseQueue

SPOT_0808 = "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
USDM_0808 = "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
PREFIX_LINES = 7_000
"""About the first minute of the capture (its depth snapshot is line 8)."""
NS = 1_000_000_000


@cache
def spot_lines() -> tuple[bytes, ...]:
    with gzip.open(shared_data_dir() / SPOT_0808, "rb") as handle:
        return tuple(handle.read().splitlines(keepends=True))


def write_capture(path: Path, lines: list[bytes] | tuple[bytes, ...]) -> Path:
    with gzip.open(path, "wb") as handle:
        handle.write(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first minute of the spot capture, as a capture file of its own."""
    path = tmp_path_factory.mktemp("l2") / "spot_prefix.jsonl.gz"
    return write_capture(path, spot_lines()[:PREFIX_LINES])


def replay(paths: list[Path], **config: Any) -> tuple[L2Replay, ReplayResult]:
    run = L2Replay(list(paths), ReplayConfig(**config))
    return run, run.run()


def records(path: Path) -> list[JournalRecord]:
    journal = Journal(path)
    try:
        return list(journal.records())
    finally:
        journal.close()


# -- strategies used as probes ----------------------------------------------------------


class Recorder(Strategy):
    """Records what it is given and the node's state it can see at that moment."""

    name = "recorder"

    def on_start(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.mids: list[tuple[int, int | None]] = []
        self.books: list[tuple[int, bool]] = []

    def on_quote(self, quote: QuoteTick) -> None:
        self.seen.append(("quote", quote.ts))
        self.mids.append((quote_mid(quote.bid_price, quote.ask_price), self.ctx.last_price()))

    def on_trade(self, trade: TradeTick) -> None:
        self.seen.append(("trade", trade.ts))

    def on_book(self, book: OrderBook) -> None:
        self.seen.append(("book", book.last_update_id))
        self.books.append((book.last_update_id, book.valid))


class Probe(Strategy):
    """Every 3 s of data: withdraws its last bid and posts a new one far below the mid."""

    name = "probe"

    def on_start(self) -> None:
        self.last: int | None = None
        self.order: str | None = None
        self.cancels: list[bool] = []

    def on_quote(self, quote: QuoteTick) -> None:
        now = self.ctx.now_ns()
        if self.last is not None and now - self.last < 3 * NS:
            return
        self.last = now
        if self.order is not None:
            self.cancels.append(self.cancel(self.order))
        tick = self.instrument.price_increment
        limit = self.price(quote.bid_price - 1_000 * tick)
        self.order = self.buy("0.001", limit=limit, post_only=True)


@pytest.fixture(autouse=True)
def _probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUILTINS, "recorder", Recorder)
    monkeypatch.setitem(BUILTINS, "probe", Probe)


# -- what the strategies and the risk engine see ----------------------------------------


def test_strategies_get_every_quote_trade_and_book_update_in_receive_order(prefix: Path) -> None:
    run, _result = replay([prefix], strategy="recorder")
    recorder = run.kernel.slots[0].strategy if run.kernel else None
    assert isinstance(recorder, Recorder)
    events = list(read_binance_capture([prefix]))
    quotes = [e for e in events if isinstance(e, QuoteTick)]
    trades = [e for e in events if isinstance(e, TradeTick)]

    assert [ts for kind, ts in recorder.seen if kind == "quote"] == [q.ts for q in quotes]
    assert [ts for kind, ts in recorder.seen if kind == "trade"] == [t.ts for t in trades]
    # The strategy's last price is the quote's mid (half-even), set before it is called.
    assert all(mid == last for mid, last in recorder.mids)
    # Books only once synchronised, every one valid, each one newer than the last.
    book_ids = [update for update, _valid in recorder.books]
    assert all(valid for _update, valid in recorder.books)
    assert book_ids == sorted(book_ids) and len(book_ids) > 400
    assert run.feed is not None and run.feed.sync.gaps == 0


def test_the_risk_engine_takes_the_mid_and_data_time_of_the_quotes(prefix: Path) -> None:
    run, _result = replay([prefix], strategy="recorder")
    events = list(read_binance_capture([prefix]))
    last_quote = [e for e in events if isinstance(e, QuoteTick)][-1]
    assert run.kernel is not None
    risk = run.kernel.risk

    assert risk.last_price["BTCUSDT"] == quote_mid(last_quote.bid_price, last_quote.ask_price)
    assert risk.last_data_ts["BTCUSDT"] == max(e.ts for e in events)
    assert risk.invalid_data == {}


class FatFinger(Strategy):
    """Bids at half the mid once the book is there: a limit far outside the price band."""

    name = "fat_finger"

    def on_start(self) -> None:
        self.sent = False

    def on_book(self, book: OrderBook) -> None:
        price = self.ctx.last_price()
        if not self.sent and price is not None:
            self.sent = True
            self.buy("0.001", limit=self.price(price // 2), post_only=True)


def test_the_price_band_is_checked_around_the_quote_mid(
    prefix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(BUILTINS, "fat_finger", FatFinger)
    _run, result = replay([prefix], strategy="fat_finger")

    assert result.summary()["risk"]["rejections_by_reason"] == {"price_band": 1}


def test_quote_mid_rounds_half_to_even_like_the_venues_mark() -> None:
    assert quote_mid(6183763, 6183764) == 6183764
    assert quote_mid(6183762, 6183763) == 6183762
    assert quote_mid(6183762, 6183764) == 6183763


def test_no_order_passes_risk_before_the_first_depth_snapshot(prefix: Path, tmp_path: Path) -> None:
    journal = tmp_path / "run.sqlite"
    replay([prefix], strategy="probe", journal=str(journal))
    rows = records(journal)
    status = [(r.type, r.ts) for r in rows if r.type.startswith("MarketData")]
    snapshot = next(e for e in read_binance_capture([prefix]) if isinstance(e, BookSnapshot))
    decisions = [r for r in rows if r.type == "RiskDecision"]

    assert status[0][0] == "MarketDataInvalidated"
    assert status[1] == ("MarketDataRestored", snapshot.ts)
    before = [d for d in decisions if d.ts < snapshot.ts]
    assert before and all(d.payload["check"] == "invalid_data" for d in before)
    assert all(d.payload["approved"] for d in decisions if d.ts > snapshot.ts)


# -- a depth gap: fail closed until the resync --------------------------------------------


def snapshot_line(lines: tuple[bytes, ...], upto: int, instrument: Instrument) -> bytes:
    """A REST depth snapshot of the book as the intact capture built it up to line
    ``upto`` (0-based), stamped with that line's receive time."""
    book = OrderBook(instrument.symbol)
    sync = BookSync(book)
    for index, event in enumerate(read_binance_capture([shared_data_dir() / SPOT_0808])):
        if isinstance(event, BookSnapshot):
            sync.apply_snapshot(event)
        elif isinstance(event, BookDelta):
            sync.apply_delta(event)
        if index == upto:
            break
    assert book.valid

    def text(units: int, decimals: int) -> str:
        return f"{Decimal(units).scaleb(-decimals):.8f}"

    p, q = instrument.price_precision, instrument.size_precision
    body = {
        "lastUpdateId": book.last_update_id,
        "bids": [[text(price, p), text(size, q)] for price, size in book.bids(1000)],
        "asks": [[text(price, p), text(size, q)] for price, size in book.asks(1000)],
    }
    stamp = lines[upto].split(b" ", 1)[0]
    return stamp + b" " + json.dumps(body, separators=(",", ":")).encode() + b"\n"


@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """The first minute with one depth diff deleted and, 20 s later, a resync snapshot.

    Returns the file and the receive times of the deleted diff and of the snapshot.
    """
    lines = spot_lines()[:PREFIX_LINES]
    diffs = [i for i, line in enumerate(lines) if b"depthUpdate" in line]
    drop, resync = diffs[100], diffs[300]
    instrument = capture_instrument([shared_data_dir() / SPOT_0808])
    snapshot = snapshot_line(spot_lines(), resync, instrument)
    out: list[bytes] = []
    for index, line in enumerate(lines):
        if index != drop:
            out.append(line)
        if index == resync:
            out.append(snapshot)
    path = write_capture(tmp_path_factory.mktemp("gap") / "gapped.jsonl.gz", out)
    return path, int(lines[drop].split(b" ")[0]), int(lines[resync].split(b" ")[0])


def test_a_depth_gap_makes_the_risk_layer_deny_new_orders_until_the_resync(
    gapped: tuple[Path, int, int], tmp_path: Path
) -> None:
    path, dropped_at, resync_at = gapped
    journal = tmp_path / "gap.sqlite"
    _run, result = replay([path], strategy="probe", journal=str(journal))
    rows = records(journal)
    invalid = [r for r in rows if r.type == "MarketDataInvalidated"][1:]  # [0]: no book yet
    restored = [r for r in rows if r.type == "MarketDataRestored"][1:]
    decisions = [r for r in rows if r.type == "RiskDecision"]

    assert result.data_gaps == 1
    assert len(invalid) == len(restored) == 1
    assert dropped_at < invalid[0].ts < resync_at == restored[0].ts
    assert "depth gap" in invalid[0].payload["reason"]
    during = [d for d in decisions if invalid[0].seq < d.seq < restored[0].seq]
    after = [d for d in decisions if d.seq > restored[0].seq]
    assert len(during) >= 5
    assert all(not d.payload["approved"] and d.payload["check"] == "invalid_data" for d in during)
    assert after and all(d.payload["approved"] for d in after)
    assert result.summary()["risk"]["rejections_by_reason"]["invalid_data"] >= len(during)
    assert audit_journal(journal).clean


def test_with_market_data_latency_the_node_learns_of_the_gap_later(
    gapped: tuple[Path, int, int], tmp_path: Path
) -> None:
    path, dropped_at, resync_at = gapped
    journal = tmp_path / "gap.sqlite"
    replay([path], strategy="probe", latency="constant:0,0,50", journal=str(journal))
    rows = records(journal)
    invalid = [r for r in rows if r.type == "MarketDataInvalidated"][1]
    restored = [r for r in rows if r.type == "MarketDataRestored"][1]
    during = [r for r in rows if r.type == "RiskDecision" and invalid.seq < r.seq < restored.seq]

    assert invalid.ts >= dropped_at + 50_000_000
    assert restored.ts == resync_at + 50_000_000
    assert during and all(r.payload["check"] == "invalid_data" for r in during)
    assert audit_journal(journal).clean


def test_after_a_gap_without_a_resync_nothing_new_passes_to_the_end(tmp_path: Path) -> None:
    lines = list(spot_lines()[:PREFIX_LINES])
    diffs = [i for i, line in enumerate(lines) if b"depthUpdate" in line]
    del lines[diffs[200]]
    path = write_capture(tmp_path / "gap.jsonl.gz", lines)
    journal = tmp_path / "gap.sqlite"
    replay([path], strategy="probe", journal=str(journal))
    rows = records(journal)
    gap = [r for r in rows if r.type == "MarketDataInvalidated"][-1]
    later = [r for r in rows if r.type == "RiskDecision" and r.seq > gap.seq]

    assert later and all(r.payload["check"] == "invalid_data" for r in later)
    assert not any(r.type == "OrderSubmitted" and r.seq > gap.seq for r in rows)


# -- determinism, equity sampling, cancels ------------------------------------------------


def test_the_same_config_and_data_give_the_same_journal_digest(prefix: Path) -> None:
    config = {"commission": "0.001", "latency": "lognormal:5,0.5,2", "seed": 3}
    _, first = replay([prefix], **config)
    _, second = replay([prefix], **config)
    _, reseeded = replay([prefix], **{**config, "seed": 4})

    assert first.journal_digest == second.journal_digest
    assert first.backtest.equity_curve == second.backtest.equity_curve
    assert reseeded.journal_digest != first.journal_digest


def test_the_equity_curve_is_sampled_every_second_of_data_time(prefix: Path) -> None:
    _, result = replay([prefix])
    _, half = replay([prefix], equity_interval_ms=500)
    span = result.last_ts - result.first_ts

    # One sample per whole interval of data time, plus one at the end of the data.
    assert len(result.backtest.equity_curve) == span // NS + 1
    assert len(half.backtest.equity_curve) == span // (NS // 2) + 1
    assert result.summary()["equity_samples"] == span // NS + 1


def test_a_strategy_cancels_its_own_working_orders_only(prefix: Path, tmp_path: Path) -> None:
    journal = tmp_path / "cancels.sqlite"
    run, _result = replay([prefix], strategy="probe", journal=str(journal))
    assert run.kernel is not None
    probe = run.kernel.slots[0].strategy
    assert isinstance(probe, Probe)
    rows = records(journal)
    canceled = [r for r in rows if r.type == "OrderCanceled"]

    filled = {r.payload["client_order_id"] for r in rows if r.type == "OrderFilled"}
    # True for each order still working; False for the ones that filled first.
    by_client = [r for r in canceled if r.payload["detail"] == "canceled by client"]
    assert probe.cancels.count(True) == len(by_client) > 10
    assert probe.cancels.count(False) <= len(filled)
    assert probe.cancel("probe-0-1") is False  # not one of its working orders
    # The node's handler refuses another strategy's order, and one no longer working.
    order = canceled[-1].payload["client_order_id"]
    assert run.kernel.bus.send(CancelOrder(strategy="intruder", client_order_id=order)) is False
    assert run.kernel.bus.send(CancelOrder(strategy="probe", client_order_id=order)) is False


class BarCanceller(Strategy):
    """A bar strategy that tries to cancel: bar runs have no cancel handler."""

    name = "bar_canceller"

    def on_bar(self, bar: Any) -> None:
        order = self.buy(1, limit=self.price(bar.close * 95 // 100))
        if order is not None:
            self.cancel(order)


def test_a_bar_run_cannot_cancel_and_the_strategy_is_isolated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(BUILTINS, "bar_canceller", BarCanceller)
    feed = load_bars(shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv")
    result = Backtest(feed, BacktestConfig(strategy="bar_canceller")).run()

    strategy = result.strategies["bar_canceller"]
    assert strategy["state"] == "stopped"
    assert strategy["stopped_reason"] == "raised in on_bar: RuntimeError"


def test_latency_delays_fills_and_the_run_still_audits_clean(prefix: Path, tmp_path: Path) -> None:
    journal = tmp_path / "latency.sqlite"
    _, result = replay(
        [prefix], commission="0.001", latency="constant:20,20,5", journal=str(journal)
    )

    assert result.backtest.fills > 0
    assert audit_journal(journal).clean


# -- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latency": "fast"}, "invalid latency 'fast'"),
        ({"queue_model": "fifo"}, "invalid queue model 'fifo'"),
        ({"cash": "-5"}, "cash must be > 0"),
        ({"maker_fee": "abc"}, "maker_fee must be a number"),
        ({"tick_size": "0.001"}, "tick_size must be a number with at most 2 decimals"),
        ({"equity_interval_ms": 0}, "equity_interval_ms must be > 0"),
    ],
)
def test_a_bad_config_is_a_replay_error_and_leaves_no_journal(
    prefix: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    journal = tmp_path / "run.sqlite"
    with pytest.raises(ReplayError, match=message):
        replay([prefix], journal=str(journal), **change)

    assert list(tmp_path.iterdir()) == []


def test_the_instrument_has_the_decimals_the_reader_yields() -> None:
    spot = capture_instrument([shared_data_dir() / SPOT_0808])
    usdm = capture_instrument([shared_data_dir() / USDM_0808], tick_size="0.1", lot_size="0.001")
    first = next(
        e for e in read_binance_capture([shared_data_dir() / SPOT_0808]) if isinstance(e, TradeTick)
    )

    assert (spot.symbol, spot.quote_currency, spot.venue) == ("BTCUSDT", "USDT", "BINANCE")
    assert Decimal(first.price).scaleb(-spot.price_precision) == Decimal("61837.63")
    assert Decimal(first.size).scaleb(-spot.size_precision) == Decimal("0.02")
    assert spot.price_increment == spot.size_increment == 1
    assert Decimal(usdm.price_increment).scaleb(-usdm.price_precision) == Decimal("0.1")
    assert Decimal(usdm.size_increment).scaleb(-usdm.size_precision) == Decimal("0.001")


def test_a_file_that_is_no_binance_capture_is_named_in_the_error() -> None:
    goog = shared_data_dir() / "backtesting_py_GOOG_daily_2004-2013.csv"
    with pytest.raises(CaptureError, match="GOOG"):
        capture_instrument([goog])
    with pytest.raises(CaptureError, match="no such file"):
        capture_instrument([goog.with_name("missing.jsonl.gz")])


def test_latency_and_queue_model_specs() -> None:
    assert parse_latency("none") is None and parse_latency("constant:0") is None
    model = parse_latency("20")
    assert model is not None and model.entry_ns(0) == model.response_ns(0) == 20_000_000
    assert isinstance(model.market_data, ConstantDelay) and model.market_data.ns == 0
    assert isinstance(parse_queue_model("risk_averse"), RiskAverseQueue)
    assert repr(parse_queue_model("prob_power")) == "ProbQueue('power2')"
    assert isinstance(parse_queue_model("prob_log"), ProbQueue)
    for bad in ("constant:1,2,3,4", "lognormal:0", "prob_power:0"):
        with pytest.raises(ValueError):
            parse_latency(bad) if not bad.startswith("prob") else parse_queue_model(bad)
