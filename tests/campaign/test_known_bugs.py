"""System bugs the first campaigns found, kept as regression tests now that they are fixed."""

from __future__ import annotations

from pathlib import Path

from predator.campaign import Campaign, CampaignConfig

HERE = Path(__file__).resolve().parent
SHORT_CHAOS = str(HERE / "short_chaos.toml")


def test_a_node_crashing_twice_keeps_the_orders_it_adopted_after_the_first_crash() -> None:
    """Found by the campaigns: ``recover`` rebuilt orders from ``OrderSubmitted`` only, so
    after a second crash the orders adopted after the first one were forgotten, adopted
    again, and the audit refused the journal. Recovery now replays ``OrderAdopted``."""
    config = CampaignConfig(days=3, chaos=SHORT_CHAOS, seed=1)
    result = Campaign(config).run()
    assert result.fatal is None, result.fatal
