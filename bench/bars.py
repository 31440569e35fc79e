"""Bar-mode throughput: Predator next to backtesting.py and backtrader, in one process.

Same data (30,240 BTCUSDT 1-minute bars), same strategy logic (SMA cross, fast 10 / slow 30: on a
crossover close the position and open one unit the other way; the last trade closed at the end),
cash 10,000,000, no fees. Each engine loads the data first, outside the timed region; only the
run is timed, best of ``--repeats``. Ratio = Predator bars/s / peer bars/s.

    make bench                                   # sets up .bench-venv, then runs this
    .bench-venv/bin/python bench/bars.py --repeats 5 [--json]

The peers live only in ``.bench-venv`` (``bench/setup_env.sh``); run from any other environment,
their rows say so instead of failing. Likewise if Predator isn't importable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _machine import machine
from _peers import PeerUnavailableError, best_of, run_backtesting_py, run_backtrader

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "data" / "binanceus_BTCUSDT_1m_20230301_20230321.csv.gz"
PREDATOR = "predator"
PEERS: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "backtesting.py": run_backtesting_py,
    "backtrader": run_backtrader,
}


# --- Predator ---------------------------------------------------------------------------------
# Kept small and in one place so it is easy to adapt if the node API moves.


def _predator_load(path: str) -> Any:
    from predator.market import load_bars

    return load_bars(path)


def _predator_run(feed: Any) -> Any:
    from predator.node import Backtest, BacktestConfig

    cfg = BacktestConfig(
        strategy="sma_cross",
        params={"fast": 10, "slow": 30},
        cash="10000000",
        sizing="units:1",
        journal=None,  # in-memory sqlite journal, still written
    )
    return Backtest(feed, cfg).run()


def run_predator(path: str, repeats: int) -> dict[str, Any]:
    """Best of ``repeats`` Predator runs; the feed is (re)loaded before each, outside the timer."""
    try:
        import predator
    except ImportError as exc:
        raise PeerUnavailableError(
            "predator not installed in this environment; run `make bench`"
        ) from exc
    try:
        from predator.market import load_bars  # noqa: F401
        from predator.node import Backtest, BacktestConfig  # noqa: F401
    except ImportError as exc:
        raise PeerUnavailableError(
            f"predator's backtest API is not importable yet ({exc})"
        ) from exc

    seconds: list[float] = []
    result: Any = None
    for _ in range(repeats):
        feed = _predator_load(path)  # a feed may be single-pass: load a fresh one, untimed
        _, runs, result = best_of(1, lambda feed=feed: _predator_run(feed))
        seconds.extend(runs)
    best = min(seconds)
    bars = int(getattr(result, "bars", 0))
    return {
        "engine": PREDATOR,
        "version": getattr(predator, "__version__", "?"),
        "bars": bars,
        "trades": int(result.trades),
        "final_equity": f"{result.final_equity:.2f}",
        "best_seconds": best,
        "bars_per_second": bars / best if best > 0 else 0.0,
        "seconds": seconds,
        "notes": "in-memory sqlite journal written",
    }


def _risk_cost(path: str) -> dict[str, float]:
    """One extra, untimed-for-ratio run that times every pre-trade check of the risk engine."""
    from predator.risk.risk_engine import RiskEngine

    original = RiskEngine._check
    spent = [0.0, 0]

    def timed(self: Any, record: Any, request: Any, *rest: Any) -> None:
        start = time.perf_counter()
        try:
            original(self, record, request, *rest)
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += 1

    RiskEngine._check = timed  # type: ignore[method-assign]
    try:
        _predator_run(_predator_load(path))
    finally:
        RiskEngine._check = original  # type: ignore[method-assign]
    orders = int(spent[1])
    return {"orders": orders, "us_per_order": spent[0] / orders * 1e6 if orders else 0.0}


# --- harness ----------------------------------------------------------------------------------


def _attempt(
    name: str, runner: Callable[[str, int], dict[str, Any]], path: str, repeats: int
) -> dict[str, Any]:
    try:
        return {"status": "ok", **runner(path, repeats)}
    except PeerUnavailableError as exc:
        return {"engine": name, "status": "unavailable", "message": str(exc)}
    except Exception as exc:  # an engine failing must not hide the others' figures
        traceback.print_exc(file=sys.stderr)
        return {"engine": name, "status": "error", "message": f"{type(exc).__name__}: {exc}"}


def _merge(best: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Keep the faster run of one engine, remembering every run's seconds."""
    if best is None or new.get("status") != "ok":
        return new if best is None else best
    if best.get("status") != "ok":
        return new
    runs = [*best.get("seconds", []), *new.get("seconds", [])]
    winner = new if new["best_seconds"] < best["best_seconds"] else best
    return {**winner, "seconds": runs}


def measure(path: str, repeats: int) -> dict[str, Any]:
    # Interleaved rounds (every engine once per round, best of all rounds): a shared,
    # noisy machine then slows every engine alike instead of whichever ran last.
    runners = {PREDATOR: run_predator, **PEERS}
    engines: dict[str, Any] = {}
    for _ in range(repeats):
        for name, runner in runners.items():
            engines[name] = _merge(engines.get(name), _attempt(name, runner, path, 1))
    ours = engines[PREDATOR]
    if ours.get("status") == "ok":
        risk = _risk_cost(path)
        ours["risk_us_per_order"] = risk["us_per_order"]
        ours["risk_orders"] = risk["orders"]
    ratios: dict[str, float | None] = {}
    for name in PEERS:
        peer = engines[name]
        ok = ours["status"] == "ok" and peer["status"] == "ok" and peer["bars_per_second"] > 0
        ratios[name] = ours["bars_per_second"] / peer["bars_per_second"] if ok else None
    return {
        "benchmark": "bars: SMA cross 10/30, one unit per trade, cash 10,000,000",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": machine(),
        "data": str(path),
        "repeats": repeats,
        "engines": engines,
        "ratios": ratios,
    }


def _table(report: dict[str, Any]) -> str:
    header = ("engine", "bars/s", "run s", "trades", "final equity", "predator ×")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for name, res in report["engines"].items():
        if res["status"] != "ok":
            rows.append((name, "-", "-", "-", "-", "-"))
            notes.append(f"{name}: {res['message']}")
            continue
        ratio = report["ratios"].get(name)
        rows.append(
            (
                f"{name} {res['version']}",
                f"{res['bars_per_second']:,.0f}",
                f"{res['best_seconds']:.3f}",
                f"{res['trades']:,}",
                f"{float(res['final_equity']):,.2f}",
                "-" if name == PREDATOR else ("n/a" if ratio is None else f"{ratio:.2f}"),
            )
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        rest = (c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        return "  ".join((row[0].ljust(widths[0]), *rest))

    m = report["machine"]
    lines = [
        f"bench/bars.py — {report['benchmark']}",
        f"date: {report['date']}",
        f"machine: {m['cpu']} · {m['python']} · {m['platform']}",
        f"data: {report['data']} · best of {report['repeats']} (run time only)",
        "",
        fmt(header),
        fmt(tuple("-" * w for w in widths)),
        *(fmt(r) for r in rows),
    ]
    ok = [r for r in report["engines"].values() if r["status"] == "ok"]
    if len({r["trades"] for r in ok}) > 1:
        notes.append("note: trade counts differ between engines; compare before trusting ratios")
    summary = [f"{v:.2f}× {k}" for k, v in report["ratios"].items() if v is not None]
    if summary:
        lines += ["", "Predator bars/s = " + ", ".join(summary)]
    ours = report["engines"].get(PREDATOR, {})
    if ours.get("status") == "ok":
        lines.append(
            f"risk layer: {ours['risk_us_per_order']:.1f} µs per order intent "
            f"(pre-trade checks, {ours['risk_orders']:,} intents; every check on)"
        )
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of N runs (default 5)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="OHLCV CSV(.gz) to run on")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    report = measure(args.data, args.repeats)
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
