"""What a campaign runs: the strategy line-up (two engines) and the campaign risk profile.

The line-up is two engines of healthy trend strategies plus one deliberately faulty
strategy at a small allocation, so strategies die while the system lives. The risk
profile (``CAMPAIGN_RISK``, documented key by key in ``docs/campaign-risk.toml``, which a
test keeps equal to it) turns every hard check and kill switch on.
"""

from __future__ import annotations

from typing import Any

from predator.node.backtest import StrategySpec

__all__ = ["CAMPAIGN_RISK", "CAMPAIGN_STRATEGIES", "FAULTY_STRATEGIES"]

CAMPAIGN_STRATEGIES: tuple[StrategySpec, ...] = (
    StrategySpec(
        strategy="sma_cross",
        params={"fast": 60, "slow": 240},
        allocation="0.3",
        engine="trend",
        name="trend_sma",
    ),
    StrategySpec(
        strategy="ema_cross",
        params={"fast": 30, "slow": 120},
        allocation="0.3",
        engine="trend",
        name="trend_ema",
    ),
    StrategySpec(
        strategy="sma_cross",
        params={"fast": 20, "slow": 90},
        allocation="0.35",
        engine="alt",
        name="alt_sma",
    ),
    StrategySpec(
        strategy="flood",
        params={"orders_per_bar": 50},
        allocation="0.05",
        engine="alt",
        name="flood",
    ),
)
"""Engine ``trend``: SMA 60/240 and EMA 30/120; engine ``alt``: SMA 20/90 and a flood
(50 orders a bar: rate-limited, its breaker opens, the kill switch stops it for good)."""

FAULTY_STRATEGIES: frozenset[str] = frozenset({"flood"})
"""Strategies built to fail: the automated operator never brings them back."""

CAMPAIGN_RISK: dict[str, Any] = {
    "limits": {
        "max_total_exposure": "1.0",
        "max_leverage": "1.0",
        "price_band": "0.10",
        "max_orders_per_minute_strategy": 30,
        "max_orders_per_minute_engine": 60,
        "stale_data_seconds": 180,
    },
    "breaker": {
        "consecutive_failures": 5,
        "failure_rate": "0.5",
        "window_seconds": 300,
        "min_calls": 10,
        "consecutive_losses": 12,
        "cooldown_seconds": 60,
        "half_open_successes": 2,
    },
    "kill_switch": {
        "max_loss_from_peak": "0.25",
        "daily_loss_limit": "0.10",
        "flatten_on_trip": False,
    },
    "heartbeat": {"interval_seconds": 5, "timeout_seconds": 15},
    "protections": {
        "cooldown_seconds": 60,
        "max_drawdown": {
            "max_allowed_drawdown": "0.15",
            "lookback_seconds": 86400,
            "stop_seconds": 3600,
        },
        "stoploss_guard": {"trade_limit": 4, "lookback_seconds": 3600, "stop_seconds": 1800},
        "low_profit": {
            "trade_limit": 20,
            "lookback_seconds": 21600,
            "required_profit": "-0.5",
            "stop_seconds": 3600,
        },
    },
}
"""The campaign risk profile (a parsed TOML document for ``BacktestConfig.risk``)."""
