"""From the user's risk configuration to the exact limits the kernel enforces.

Two profiles: with no configuration, a backtest runs the *backtest* profile — every
hard safety check on (rates, staleness, price band, exposure, leverage, duplicates,
breakers on failures, CRO heartbeat) and the P&L-based stops off (losing-streak and
loss-budget breakers, loss-from-peak kill switch), so a strategy's results compare
with other engines. A configuration file switches on exactly what it says.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec

from predator.core.numbers import from_decimal
from predator.market.instrument import Instrument
from predator.risk.circuit_breaker import BreakerConfig
from predator.risk.config import RiskConfig
from predator.risk.risk_engine import RiskLimits

__all__ = ["RiskSettings"]

_NEVER = 2**62
"""A count no run reaches: how the backtest profile switches a streak rule off."""


class RiskSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The kernel's risk parameters in exact units."""

    config: RiskConfig
    profile: str
    limits: RiskLimits
    breaker: BreakerConfig
    heartbeat_timeout_ns: int
    max_loss_from_peak: Fraction | None
    daily_loss_limit: Fraction | None
    protections_enabled: bool

    @classmethod
    def from_config(
        cls, risk: dict[str, Any] | None, instrument: Instrument, source: str = "risk config"
    ) -> RiskSettings:
        """Validate ``risk`` (a parsed TOML document; ``None``: backtest profile)."""
        config = RiskConfig.from_dict(risk or {}, source=source)
        backtest = risk is None
        lim = config.limits
        size_p = instrument.size_precision
        money_p = instrument.money_precision

        def units(value: Decimal | None) -> int | None:
            return None if value is None else from_decimal(value, size_p, "floor")

        def money(value: Decimal | None) -> int | None:
            return None if value is None else from_decimal(value, money_p, "floor")

        limits = RiskLimits(
            max_order_quantity=units(lim.max_order_quantity),
            max_order_notional=money(lim.max_order_notional),
            max_position_quantity=units(lim.max_position_quantity),
            max_engine_position_quantity=units(lim.max_engine_position_quantity),
            max_total_exposure=Fraction(lim.max_total_exposure),
            max_leverage=Fraction(lim.max_leverage),
            price_band=Fraction(lim.price_band),
            max_orders_per_minute_strategy=lim.max_orders_per_minute_strategy,
            max_orders_per_minute_engine=lim.max_orders_per_minute_engine,
            stale_data_ns=lim.stale_data_ns,
            heartbeat_interval_ns=config.heartbeat.interval_ns,
        )
        brk = config.breaker
        breaker = BreakerConfig(
            consecutive_failures=brk.consecutive_failures,
            failure_rate=str(brk.failure_rate),
            window_ns=brk.window_ns,
            min_calls=brk.min_calls,
            consecutive_losses=_NEVER if backtest else brk.consecutive_losses,
            max_cumulative_loss=None if backtest else money(brk.max_cumulative_loss),
            cooldown_ns=brk.cooldown_ns,
            half_open_successes=brk.half_open_successes,
        )
        kill = config.kill_switch
        return cls(
            config=config,
            profile="backtest" if backtest else "configured",
            limits=limits,
            breaker=breaker,
            heartbeat_timeout_ns=config.heartbeat.timeout_ns,
            max_loss_from_peak=None if backtest else Fraction(kill.max_loss_from_peak),
            daily_loss_limit=(
                None
                if backtest or kill.daily_loss_limit is None
                else Fraction(kill.daily_loss_limit)
            ),
            protections_enabled=not backtest,
        )
