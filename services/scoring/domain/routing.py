"""Who gets an alert and whether it may go out: the seeds' ownership table, the health gate, the minimum tier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from services.scoring.domain.config import ScoringConfig
from services.scoring.domain.facts import Facts
from shared.schemas import Alert, Signal, Tier
from shared.signal_types import kinds_where


@dataclass(frozen=True)
class Route:
    motion: Literal["upsell", "cross_sell", "strategic"] | None
    route_to: Literal["csm", "ae"]
    owner: str | None
    informed: list[str]


CROSS_SELL_SIGNALS = kinds_where(lambda kind: kind.motion == "cross_sell")


def route(signal: Signal, facts: Facts, config: ScoringConfig, retention: bool) -> Route:
    """The seeds' ownership table; owners come from the account, else the configured default."""
    routing = config.routing
    account = facts.account
    csm = account.csm or routing.default_owner
    ae = account.ae or routing.default_owner
    if retention:
        return Route(None, "csm", csm, [])
    amount = facts.estimate.amount
    share = None
    if amount is not None:
        share = amount / account.arr if account.arr > 0 else (math.inf if amount > 0 else 0.0)
    if share is not None and share >= routing.strategic_share:
        motion: Literal["upsell", "cross_sell", "strategic"] = "strategic"
    elif signal.type in CROSS_SELL_SIGNALS:
        motion = "cross_sell"
    else:
        motion = "upsell"
    if motion == "upsell" and (share is None or share < routing.large_upsell_share):
        return Route(motion, "csm", csm, [account.ae] if account.ae and ae != csm else [])
    return Route(motion, "ae", ae, [account.csm] if account.csm and csm != ae else [])


def gate(facts: Facts, config: ScoringConfig) -> str | None:
    """Why no expansion alert may go out, or None; unknown health is not gated."""
    health = facts.health
    if health.billing_issue_open:
        return "open billing issue: fix it before any expansion conversation"
    if health.recent_contraction:
        return "the account downgraded or churned recently"
    if health.score is not None and health.score < config.health.threshold:
        return f"health {health.score:g} is below {config.health.threshold:g}"
    return None


TIER_ORDER = (Tier.LOW, Tier.MEDIUM_TERM, Tier.SHORT_TERM, Tier.IMMEDIATE)


def actionable(alert: Alert, config: ScoringConfig) -> bool:
    """Retention alerts always are; expansion alerts from the configured tier up."""
    if alert.kind == "retention_risk":
        return True
    return TIER_ORDER.index(alert.tier) >= TIER_ORDER.index(Tier(config.routing.min_alert_tier))
