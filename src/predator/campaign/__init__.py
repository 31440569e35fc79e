"""Campaigns: the whole system under chaos for simulated days, judged by pass/fail gates."""

from predator.campaign.campaign import Campaign, CampaignResult
from predator.campaign.config import CampaignConfig, CampaignError
from predator.campaign.gates import GATES, GateResult
from predator.campaign.operator import AutoOperator, OperatorPolicy

__all__ = [
    "GATES",
    "AutoOperator",
    "Campaign",
    "CampaignConfig",
    "CampaignError",
    "CampaignResult",
    "GateResult",
    "OperatorPolicy",
]
