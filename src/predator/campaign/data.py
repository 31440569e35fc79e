"""A campaign's bars: real 1-minute data, block-bootstrapped to the campaign's length.

The bundled BTCUSDT capture (3 weeks) is extended to ``days * 1440`` bars with
``predator.market.synthetic.block_bootstrap`` and the campaign seed; the market scenarios
the chaos configuration names (flash crash, bear market, parabolic mania) are then
applied as transforms of that feed; the library's other scenarios become planned faults.
Each scenario starts at a seeded time between 10 % and 70 % of the campaign.
"""

from __future__ import annotations

from typing import Any

import msgspec

from predator.campaign.config import BARS_PER_DAY, CampaignConfig, CampaignError
from predator.campaign.profile import FAULTY_STRATEGIES
from predator.chaos import ChaosConfig, PlannedFault, ScenarioLibrary
from predator.core.rng import RngStreams
from predator.market import DataFormatError, load_bars
from predator.market.bar_loader import BarFeed
from predator.market.synthetic import block_bootstrap

__all__ = ["CampaignData", "PlacedScenario", "build_feed"]

NS_PER_SECOND = 1_000_000_000
MINUTE_NS = 60 * NS_PER_SECOND

SIZE_PRECISION = 5
"""Order sizes of the campaign's instrument in 0.00001 units (BTC)."""


class PlacedScenario(msgspec.Struct, frozen=True, kw_only=True):
    """A scenario of the library placed in the campaign: which, of which group, when."""

    name: str
    group: str
    start_ts: int
    end_ts: int


class CampaignData(msgspec.Struct, frozen=True, kw_only=True):
    """The campaign feed, the scenarios placed in it and the faults they add."""

    feed: BarFeed
    scenarios: tuple[PlacedScenario, ...]
    faults: tuple[PlannedFault, ...]
    skipped: tuple[str, ...]
    """Scenarios whose required component is not installed."""
    source: str


def build_feed(config: CampaignConfig, chaos: ChaosConfig) -> CampaignData:
    """The campaign's bars for ``config`` (same config and seed -> the same bars), with the
    scenarios of ``chaos`` placed at seeded times: market ones applied to the bars, the
    others as planned faults for the chaos engine."""
    path = config.data_path()
    try:
        real = load_bars(path, size_precision=SIZE_PRECISION)
    except DataFormatError as exc:
        raise CampaignError(str(exc)) from None
    if len(real) < 2:
        raise CampaignError(f"{path}: a campaign needs at least two bars")
    feed = block_bootstrap(real, bars=config.bars, seed=config.seed, block=BARS_PER_DAY)
    library = ScenarioLibrary()
    rng = RngStreams(config.seed).stream("campaign.scenarios")
    span = feed.last_ts - feed.first_ts
    targets = sorted(
        spec.name or spec.strategy
        for spec in config.strategies
        if (spec.name or spec.strategy) not in FAULTY_STRATEGIES
    )
    placed: list[PlacedScenario] = []
    faults: list[PlannedFault] = []
    skipped: list[str] = []
    for name in chaos.scenarios:
        # Drawn for every scenario, applicable or not, so one never moves another.
        offset = int(span * float(rng.uniform(0.1, 0.7))) // MINUTE_NS * MINUTE_NS
        start = feed.first_ts + offset
        scenario = library.get(name)
        if not library.available(name):
            skipped.append(name)
            continue
        if scenario.mode == "transform":
            feed = library.transform(name, feed, start)
            end = min(feed.last_ts, start + _length(scenario.params))
            placed.append(
                PlacedScenario(name=name, group=scenario.group, start_ts=start, end_ts=end)
            )
            continue
        planned = library.faults(name, start_ns=start, targets=targets)
        faults.extend(planned)
        end = max((fault.until_ns for fault in planned), default=start)
        placed.append(PlacedScenario(name=name, group=scenario.group, start_ts=start, end_ts=end))
    return CampaignData(
        feed=feed,
        scenarios=tuple(placed),
        faults=tuple(faults),
        skipped=tuple(skipped),
        source=str(path),
    )


def _length(params: dict[str, Any]) -> int:
    """How long a market scenario lasts, from its parameters."""
    minutes = int(params.get("crash_minutes", 0)) + int(params.get("rebound_minutes", 0))
    hours = int(params.get("hours", 0))
    days = int(params.get("days", 0))
    return (minutes * 60 + hours * 3600 + days * 86_400) * NS_PER_SECOND or MINUTE_NS
