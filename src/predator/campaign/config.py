"""A campaign's configuration: how long, how much chaos, which seed, which data, where to.

``CampaignConfig`` is one validated, immutable object; ``CampaignConfig.validated()``
turns every user mistake into one :class:`CampaignError` line (the CLI exits 2 on it).
Everything a run depends on is in it, so a report's ``config`` re-runs the campaign.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from predator.campaign.profile import CAMPAIGN_STRATEGIES
from predator.chaos import INTENSITIES, ChaosConfig, load_chaos_config
from predator.node.backtest import StrategySpec
from predator.node.governance import GovernanceConfig
from predator.risk.config import ConfigError
from predator.strategy.allocator import AllocatorConfig

__all__ = [
    "BUNDLED_DATA",
    "CAMPAIGN_DAYS",
    "CampaignConfig",
    "CampaignError",
    "bundled_data_path",
]

BUNDLED_DATA = "binanceus_BTCUSDT_1m_20230301_20230321.csv.gz"
"""The real BTCUSDT 1-minute bars bundled in ``data/``: a campaign's default source."""

CAMPAIGN_DAYS: tuple[int, ...] = (30, 90, 180, 365)
"""The issue's campaign lengths (any positive number of days is accepted)."""

BARS_PER_DAY = 1440


class CampaignError(ValueError):
    """A campaign was configured with a value it cannot use (a user error, one line)."""


def bundled_data_path() -> Path:
    """``data/<BUNDLED_DATA>`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[3] / "data" / BUNDLED_DATA


class CampaignConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a campaign is a function of.

    ``days``: simulated days (``days * 1440`` one-minute bars, block-bootstrapped from
    ``data`` with ``seed``). ``chaos``: a preset (none, light, medium, heavy, extreme) or
    a chaos TOML file. ``data``: an OHLCV file (default: the bundled BTCUSDT 1m capture).
    ``out_dir``: where the journal, post-mortems and reports go (``None``: in memory,
    no files). ``risk``: a risk document (``None``: the campaign profile). ``cooloff_s``:
    how long the automated operator waits after a halt before it may approve resuming.
    ``restart_s``: how long a crashed node stays down before it is restarted.
    ``reconciliation`` and ``invariants`` exist for tests that prove the gates can fail;
    a real campaign keeps them on. ``governance`` [on]: an allocator moves capital between
    the pools every ``governance_interval_s`` [4 h] of kernel time, scoring each strategy
    on its last ``allocator_window`` [12] rounds (so a 30-day campaign has ~180 rounds).
    """

    days: int = 30
    chaos: str = "medium"
    seed: int = 1
    data: str | None = None
    out_dir: str | None = None
    cash: str = "200000"
    commission: str = "0.00075"
    sizing: str = "fraction:0.5"
    strategies: tuple[StrategySpec, ...] = CAMPAIGN_STRATEGIES
    risk: dict[str, Any] | None = None
    cooloff_s: int = 900
    restart_s: int = 120
    snapshot_every: int = 10_000
    journal_batch: int = 2048
    postmortems: bool = True
    reconciliation: bool = True
    invariants: bool = True
    governance: bool = True
    governance_interval_s: int = 4 * 3600
    allocator_window: int = 12

    def validated(self) -> CampaignConfig:
        """Itself when usable; a one-line :class:`CampaignError` otherwise."""
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise CampaignError(f"--days must be a whole number of days >= 1, got {self.days!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise CampaignError(f"--seed must be a whole number >= 0, got {self.seed!r}")
        if self.cooloff_s < 0 or self.restart_s < 0:
            raise CampaignError("cool-off and restart delays must be >= 0 seconds")
        if self.governance_interval_s < 1 or self.allocator_window < 1:
            raise CampaignError("the governance interval and allocator window must be >= 1")
        self.chaos_config()
        data = self.data_path()
        if not data.is_file():
            raise CampaignError(f"{data}: no such data file (give an OHLCV file with --data)")
        return self

    def chaos_config(self) -> ChaosConfig:
        """The chaos configuration ``chaos`` names (a preset or a TOML file)."""
        if self.chaos in INTENSITIES:
            return ChaosConfig.preset(self.chaos)
        if not self.chaos.endswith(".toml") and not os.path.exists(self.chaos):
            raise CampaignError(
                f"--chaos expects one of {', '.join(INTENSITIES)} or a chaos TOML file, "
                f"got {self.chaos!r}"
            )
        try:
            return load_chaos_config(self.chaos)
        except ConfigError as exc:
            raise CampaignError(str(exc)) from None

    def governance_config(self) -> GovernanceConfig | None:
        """The allocator settings of the campaign's node (``None``: governance off)."""
        if not self.governance:
            return None
        return GovernanceConfig(
            interval_ns=self.governance_interval_s * 1_000_000_000,
            allocator=AllocatorConfig(window=self.allocator_window),
        )

    def data_path(self) -> Path:
        """The OHLCV file the campaign's bars come from."""
        return bundled_data_path() if self.data is None else Path(self.data)

    @property
    def bars(self) -> int:
        """One-minute bars the campaign runs through."""
        return self.days * BARS_PER_DAY

    def command(self) -> str:
        """The ``predator campaign`` command line that reproduces this campaign.

        A recorded campaign (``out_dir``) is re-run with ``--replay``, which checks the
        same journal digest. Otherwise the command records it (``--out
        campaign-seed-N``): the same seed gives the same run, and the journal,
        post-mortems and reports of the failure land in that directory.
        """
        parts = ["predator campaign", f"--days {self.days}", f"--chaos {self.chaos}"]
        parts.append(f"--seed {self.seed}")
        if self.data is not None:
            parts.append(f"--data {self.data}")
        if self.out_dir is not None:
            parts += [f"--out {self.out_dir}", "--replay"]
        else:
            parts.append(f"--out campaign-seed-{self.seed}")
        return " ".join(parts)
