"""A 365-day extreme campaign on 1-minute bars: wall time, and what chaos and invariants cost.

Runs ``predator.campaign.Campaign`` on 525,600 one-minute bars (the bundled BTCUSDT capture
block-bootstrapped, two engines plus the faulty flood, the allocator) three ways and
prints one table:

- baseline: no chaos, invariants off (the same node, strategies, risk profile, journal);
- invariants: no chaos, the balance equation checked after every journaled event;
- extreme: the ``extreme`` preset, everything on (crashes about daily, restarts,
  recoveries, every fault kind and scenario).

The cost ratio compares wall time per bar with the baseline's. Usage::

    .venv/bin/python bench/campaign.py [--days 365] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from predator.campaign import Campaign, CampaignConfig


def _run(name: str, config: CampaignConfig) -> dict[str, Any]:
    started = time.perf_counter()
    result = Campaign(config).run()
    wall = time.perf_counter() - started
    metrics = result.metrics
    bars = int(metrics["bars_simulated"])
    return {
        "run": name,
        "bars": bars,
        "wall_s": round(wall, 2),
        "bars_per_s": round(bars / wall),
        "us_per_bar": round(wall / max(bars, 1) * 1e6, 1),
        "events": result.journal_events,
        "crashes": metrics["crashes"],
        "faults": metrics["faults_injected"],
        "kill_switch_trips": metrics["kill_switch_trips"],
        "uptime_pct": metrics["uptime_pct"],
        "verdict": result.verdict,
        "fatal": result.fatal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = CampaignConfig(days=args.days, seed=args.seed, chaos="none")
    rows = [
        _run("baseline (no chaos, no invariants)", _replace(base, invariants=False)),
        _run("no chaos, invariants on", base),
        _run("extreme (preset)", _replace(base, chaos="extreme")),
    ]
    baseline = rows[0]["us_per_bar"]
    for row in rows:
        row["cost_vs_baseline"] = round(row["us_per_bar"] / baseline, 2)
    if args.json:
        print(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"campaign bench: {args.days} days of 1-minute bars, seed {args.seed}")
    columns = ("run", "bars", "wall_s", "bars_per_s", "cost_vs_baseline", "events", "crashes")
    for column in (*columns, "faults", "uptime_pct", "verdict"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in (*columns, "faults", "uptime_pct", "verdict")))
    Console(width=200).print(table)
    for row in rows:
        if row["fatal"]:
            print(f"{row['run']}: {row['fatal'][:300]}")


def _replace(config: CampaignConfig, **changes: Any) -> CampaignConfig:
    import msgspec

    return msgspec.structs.replace(config, **changes)


if __name__ == "__main__":
    main()
