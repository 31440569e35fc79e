"""Issue 5 acceptance on the real BTC 1-minute data: the flood is stopped, the rest lives.

``sma_cross`` and ``flood`` run side by side, each in its own capital pool. Flood is
rate-limited, its breaker opens, its kill switch trips and it is stopped; sma_cross keeps
trading to the end with exactly the trades it makes alone with the same capital.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from predator.ledger import Journal
from predator.market import load_bars
from predator.node import Backtest, BacktestConfig, BacktestResult, StrategySpec
from predator.testkit import shared_data_dir

BTC = "binanceus_BTCUSDT_1m_20230301_20230321.csv.gz"


def _run(path: Path, postmortem_dir: Path | None = None, **config: object) -> BacktestResult:
    feed = load_bars(path, size_precision=5)
    config_ = BacktestConfig(**config)  # type: ignore[arg-type]
    return Backtest(feed, config_, postmortem_dir=postmortem_dir).run()


def _trade_keys(result: BacktestResult) -> list[tuple[int, int, int, int, int]]:
    return [
        (t.size, t.entry_ts, t.exit_ts, t.entry_price, t.exit_price) for t in result.trades_list
    ]


@pytest.fixture(scope="module")
def together(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, Path]:
    journal = tmp_path_factory.mktemp("flood") / "run.sqlite"
    result = _run(
        shared_data_dir() / BTC,
        postmortem_dir=journal.parent / "postmortems",
        strategies=(
            StrategySpec(strategy="sma_cross", allocation="0.5"),
            StrategySpec(strategy="flood", allocation="0.5"),
        ),
        cash="200000",
        sizing="fraction:0.95",
        journal=str(journal),
    )
    return result, journal


def test_flood_is_rate_limited_its_breaker_opens_and_it_is_stopped(
    together: tuple[BacktestResult, Path],
) -> None:
    result, journal_path = together
    flood = result.strategies["flood"]
    assert flood["state"] == "killed"
    assert flood["breaker_trips"] >= 3
    assert result.risk["rejections_by_reason"]["rate_limit"] > 0
    assert result.risk["kill_switch_trips"] == 1
    journal = Journal(journal_path)
    types = [r.type for r in journal.records()]
    journal.close()
    # every halt is explained in the journal
    assert "BreakerStateChanged" in types
    assert "KillSwitchTripped" in types
    assert "StrategyStopped" in types
    # after the kill, flood sends nothing more
    assert flood["orders_sent"] < 1000


def test_every_halt_of_the_flood_has_its_post_mortem_written_by_the_run(
    together: tuple[BacktestResult, Path],
) -> None:
    result, _ = together
    written = [Path(p) for p in result.postmortems]
    assert written and written[-1].name == "index.md"
    names = [p.name for p in written if p.suffix == ".md" and p.name != "index.md"]
    assert sum(name.endswith("-KillSwitchTripped.md") for name in names) == 1
    assert sum(name.endswith("-BreakerStateChanged.md") for name in names) >= 3
    kill = next(p for p in written if p.name.endswith("-KillSwitchTripped.md")).read_text()
    assert "strategy:flood" in kill
    assert "still halted" in kill  # nothing resumed it: the report says so
    index = written[-1].read_text()
    assert all(name in index for name in names)


def test_sma_cross_trades_exactly_as_it_does_alone_with_the_same_capital(
    together: tuple[BacktestResult, Path],
) -> None:
    result, _ = together
    alone = _run(shared_data_dir() / BTC, cash="100000", sizing="fraction:0.95")
    assert result.strategies["sma_cross"]["state"] == "active"
    assert result.strategies["sma_cross"]["orders_rejected"] == 0
    sma_trades = [
        (t.size, t.entry_ts, t.exit_ts, t.entry_price, t.exit_price)
        for t in result.trades_by_strategy["sma_cross"]
    ]
    assert len(alone.trades_list) == 1292
    assert sma_trades == _trade_keys(alone)


def test_a_cut_in_the_data_means_no_new_exposure_until_it_resumes(tmp_path: Path) -> None:
    """Real BTC data with 60 minutes removed; a timer-driven strategy keeps asking."""
    source = shared_data_dir() / BTC
    # The first 2,000 real bars (a day and a half) are enough and keep the test fast.
    lines = gzip.decompress(source.read_bytes()).decode().splitlines(keepends=True)[:2001]
    cut_from, cut_to = 1000, 1060  # data rows (1-based after the header) removed
    gap_start_row = lines[cut_from - 1]  # the last bar before the cut
    resume_row = lines[cut_to + 1]
    del lines[cut_from : cut_to + 1]
    cut = tmp_path / "btc_cut.csv"
    cut.write_text("".join(lines))
    strategy = tmp_path / "eager.py"
    strategy.write_text(
        "from predator.strategy import Strategy\n\n\n"
        "class Eager(Strategy):\n"
        "    def on_start(self):\n"
        "        self.every(30, self.tick)\n\n"
        "    def tick(self, ts):\n"
        "        if self.position < 5 * 10**5:\n"
        "            self.buy(units=1)\n"
        "        else:\n"
        "            self.close()\n"
    )
    journal_path = tmp_path / "cut.sqlite"
    feed = load_bars(cut, size_precision=5)
    Backtest(
        feed,
        BacktestConfig(strategy=str(strategy), cash="1000000", journal=str(journal_path)),
    ).run()

    from datetime import datetime

    def ts_of(row: str) -> int:
        return int(datetime.fromisoformat(row.split(",")[0]).timestamp()) * 1_000_000_000

    last_before, first_after = ts_of(gap_start_row), ts_of(resume_row)
    stale_after = last_before + 180 * 1_000_000_000  # the default stale_data_seconds
    journal = Journal(journal_path)
    decisions = [r.payload for r in journal.records() if r.type == "RiskDecision"]
    journal.close()
    in_gap = [d for d in decisions if stale_after < d["ts"] < first_after]
    assert len(in_gap) > 100  # the strategy kept asking every 30 s for an hour
    assert all(not d["approved"] and d["check"] == "stale_data" for d in in_gap)
    after = [d for d in decisions if d["ts"] >= first_after]
    assert any(d["approved"] for d in after)  # trading resumes with the data
