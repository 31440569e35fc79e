"""L2 book replay throughput: raw gzip capture -> rebuilt book + bookTicker checks, msgs/s.

Predator's ``check_binance_capture`` (with its compiled fast path, and without it: "pure")
next to a plain-Python baseline (gzip line iterator,
``json.loads``, a dict per side, ``max``/``min`` for the best prices) doing the same work:
Binance sync rules, every diff applied, the same bookTicker comparison rule, the same counts
(asserted). Interleaved rounds, best of ``--repeats``; msgs/s = capture lines / best seconds.

    .venv/bin/python bench/l2.py [--repeats 5] [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _machine import machine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DATASETS = {
    "spot 0808+0809": [
        "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz",
        "hftbacktest_binance_spot_btcusdt_20240809.jsonl.gz",
    ],
    "usdm 0808": ["hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"],
}


def run_predator(paths: list[str]) -> dict[str, int]:
    from predator.market import check_binance_capture

    report = check_binance_capture(paths)
    return {"messages": report.messages, "checks": report.checks, "mismatches": report.mismatches}


def run_predator_pure(paths: list[str]) -> dict[str, int]:
    """Predator without its compiled fast path (what runs when _fastbook is not built)."""
    from predator.market import _check_blocks, order_book

    saved = _check_blocks._fastbook, order_book._update_side
    _check_blocks._fastbook, order_book._update_side = None, None
    try:
        return run_predator(paths)
    finally:
        _check_blocks._fastbook, order_book._update_side = saved


def run_baseline(paths: list[str]) -> dict[str, int]:
    """The plain way: json.loads per line, a dict per side, max/min for the best prices."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    last = -1  # last applied update id; -1: no snapshot yet
    synced = False
    buffered: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []  # tickers in arrival order
    pending: list[tuple[int, tuple[int, int, int, int], dict[str, Any]]] = []
    messages = checks = mismatches = 0
    last_ticker = -1

    def units(text: str) -> int:
        return int(text.replace(".", ""))  # the stream writes a fixed number of decimals

    def compare(top: tuple[int, int, int, int], ticker: dict[str, Any]) -> None:
        nonlocal checks, mismatches
        checks += 1
        quoted = (units(ticker["b"]), units(ticker["B"]), units(ticker["a"]), units(ticker["A"]))
        mismatches += quoted != top

    def apply(data: dict[str, Any]) -> bool:
        nonlocal last, synced
        first, final = data["U"], data["u"]
        usdm = "pu" in data
        if synced:
            if (data["pu"] != last) if usdm else (first != last + 1):
                raise RuntimeError("gap")  # the bench data has none
        elif final < last or (not usdm and final == last):
            return False
        synced = True
        for price, size in data["b"]:
            p, q = units(price), units(size)
            if q:
                bids[p] = q
            else:
                bids.pop(p, None)
        for price, size in data["a"]:
            p, q = units(price), units(size)
            if q:
                asks[p] = q
            else:
                asks.pop(p, None)
        last = final
        return True

    def reached(u: int) -> None:
        i = len(history) - 1
        while i >= 0 and history[i]["u"] > u:
            i -= 1
        if i < 0:
            return
        best_bid, best_ask = max(bids), min(asks)
        top = (best_bid, bids[best_bid], best_ask, asks[best_ask])
        if i < len(history) - 1:
            compare(top, history[i])
        else:
            pending.append((u, top, history[i]))
        del history[:i]

    for path in paths:
        with gzip.open(path, "rb") as handle:
            for line in handle:
                messages += 1
                message = json.loads(line.partition(b" ")[2])
                if "lastUpdateId" in message:
                    bids = {units(p): units(q) for p, q in message["bids"]}
                    asks = {units(p): units(q) for p, q in message["asks"]}
                    last = message["lastUpdateId"]
                    synced = False
                    joined = [apply(data) for data in buffered]
                    if any(joined):
                        reached(last)
                    continue
                data = message["data"]
                if "U" in data:
                    if last < 0:
                        buffered.append(data)
                    elif apply(data):
                        reached(data["u"])
                elif "t" not in data:  # a bookTicker
                    u = data["u"]
                    if u < last_ticker:
                        continue
                    last_ticker = u
                    keep = []
                    for entry in pending:
                        if entry[0] < u:
                            compare(entry[1], entry[2])
                        else:
                            keep.append((entry[0], entry[1], data))
                    pending = keep
                    history.append(data)
    for entry in pending:
        compare(entry[1], entry[2])
    return {"messages": messages, "checks": checks, "mismatches": mismatches}


def measure(data_dir: Path, repeats: int) -> dict[str, Any]:
    engines: dict[str, Callable[[list[str]], dict[str, int]]] = {
        "predator": run_predator,
        "pure": run_predator_pure,
        "baseline": run_baseline,
    }
    best: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for _round in range(repeats):  # interleaved: every engine on every dataset each round
        for name, files in DATASETS.items():
            paths = [str(data_dir / f) for f in files]
            for engine, run in engines.items():
                gc.collect()
                start = time.perf_counter()
                result = run(paths)
                seconds = time.perf_counter() - start
                key = (name, engine)
                best[key] = min(best.get(key, seconds), seconds)
                counts[key] = result
    rows = []
    for name in DATASETS:
        ours, plain = counts[(name, "predator")], counts[(name, "baseline")]
        if not ours == plain == counts[(name, "pure")]:
            raise AssertionError(f"{name}: predator {ours} != baseline {plain}")
        rate = ours["messages"] / best[(name, "predator")]
        pure = ours["messages"] / best[(name, "pure")]
        base = plain["messages"] / best[(name, "baseline")]
        rows.append(
            {
                "dataset": name,
                **ours,
                "predator_s": round(best[(name, "predator")], 4),
                "pure_s": round(best[(name, "pure")], 4),
                "baseline_s": round(best[(name, "baseline")], 4),
                "predator_msgs_per_s": round(rate),
                "pure_msgs_per_s": round(pure),
                "baseline_msgs_per_s": round(base),
                "ratio": round(rate / base, 2),
                "pure_ratio": round(pure / base, 2),
            }
        )
    from predator.market._check_blocks import compiled

    return {
        "date": dt.date.today().isoformat(),
        "compiled": compiled(),
        "repeats": repeats,
        **machine(),
        "rows": rows,
    }


def table(report: dict[str, Any]) -> str:
    head = (
        f"L2 replay (raw gz -> book + bookTicker checks), best of {report['repeats']}, "
        f"{report['date']}, {report['cpu']}, {report['python']}"
        + ("" if report["compiled"] else " (_fastbook NOT built: predator = pure)")
    )
    columns = ("dataset", "messages", "checks", "mismatches", "predator msgs/s",
               "baseline msgs/s", "ratio", "pure-Python msgs/s", "pure ratio")  # fmt: skip
    lines = [head, " | ".join(columns)]
    for row in report["rows"]:
        lines.append(
            f"{row['dataset']} | {row['messages']:,} | {row['checks']:,} | {row['mismatches']} | "
            f"{row['predator_msgs_per_s']:,} | {row['baseline_msgs_per_s']:,} | {row['ratio']}x | "
            f"{row['pure_msgs_per_s']:,} | {row['pure_ratio']}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of N rounds (default 5)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="directory of the captures")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    report = measure(Path(args.data), args.repeats)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
