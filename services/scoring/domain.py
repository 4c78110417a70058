"""The readiness model (first cut) and alert building: pure functions, no I/O.

The seeds' five parts are product usage 30, satisfaction 25, growth 20, relationship 15 and
expansion potential 10. A part with no data is reported as missing and its weight is spread over
the parts that have data, instead of silently scoring zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from shared.config import ScoringConfig
from shared.schemas import Alert, Driver, Signal, SignalType, Tier, UsageLine

FACTORS = ("product_usage", "satisfaction", "growth", "relationship", "expansion_potential")


class UsageSnapshot(BaseModel):
    value: float
    limit: float
    utilization: float


class ScoreInputs(BaseModel):
    """What scoring has learnt about an account from its signals so far."""

    usage: dict[str, UsageSnapshot] = Field(default_factory=dict)
    domain_users: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class FactorScore:
    factor: str
    weight: float
    fraction: float | None  # None: no data for this part
    detail: str

    @property
    def points(self) -> float:
        return self.weight * (self.fraction or 0.0)


@dataclass(frozen=True)
class ScoreCard:
    score: int
    tier: Tier
    factors: tuple[FactorScore, ...]

    @property
    def missing(self) -> list[str]:
        return [factor.factor for factor in self.factors if factor.fraction is None]

    def breakdown(self) -> dict[str, object]:
        return {
            "score": self.score,
            "tier": self.tier.value,
            "missing": self.missing,
            "factors": [
                {"factor": f.factor, "weight": f.weight, "points": None if f.fraction is None else round(f.points, 2), "detail": f.detail}
                for f in self.factors
            ],
        }


def record_signal(inputs: ScoreInputs, signal: Signal) -> ScoreInputs:
    usage = dict(inputs.usage)
    domain_users = list(inputs.domain_users)
    if signal.type == SignalType.USAGE_THRESHOLD_CROSSED and signal.metric and signal.limit:
        usage[signal.metric] = UsageSnapshot(value=signal.value or 0.0, limit=signal.limit, utilization=signal.utilization or 0.0)
    if signal.type == SignalType.NEW_DOMAIN_USER and signal.user and signal.user.email not in domain_users:
        domain_users.append(signal.user.email)
    return ScoreInputs(usage=usage, domain_users=domain_users)


def _usage_fraction(peak: float) -> float:
    """Closer to the limit is readier: the seeds put the expansion moment at 80 %+ of capacity."""
    if peak >= 0.95:
        return 1.0
    if peak >= 0.9:
        return 0.85
    if peak >= 0.8:
        return 0.7
    if peak >= 0.5:
        return 0.4
    return 0.15


def _growth_fraction(new_users: int) -> float:
    return min(1.0, 0.25 + 0.25 * new_users)


def tier_for(score: int, config: ScoringConfig) -> Tier:
    bounds = config.tiers
    if score >= bounds.immediate:
        return Tier.IMMEDIATE
    if score >= bounds.short_term:
        return Tier.SHORT_TERM
    if score >= bounds.medium_term:
        return Tier.MEDIUM_TERM
    return Tier.LOW


def compute_score(inputs: ScoreInputs, config: ScoringConfig) -> ScoreCard:
    weights = config.weights
    factors: list[FactorScore] = []
    if inputs.usage:
        metric, peak = max(((m, u.utilization) for m, u in inputs.usage.items()), key=lambda item: item[1])
        factors.append(FactorScore("product_usage", weights.product_usage, _usage_fraction(peak), f"{metric} at {peak:.0%} of its limit"))
    else:
        factors.append(FactorScore("product_usage", weights.product_usage, None, "no usage against limits yet"))
    factors.append(FactorScore("satisfaction", weights.satisfaction, None, "no NPS/CSAT data yet"))
    if inputs.domain_users:
        count = len(inputs.domain_users)
        factors.append(FactorScore("growth", weights.growth, _growth_fraction(count), f"{count} new user(s) from the customer's domains"))
    else:
        factors.append(FactorScore("growth", weights.growth, None, "no growth signals yet"))
    factors.append(FactorScore("relationship", weights.relationship, None, "no stakeholder data yet"))
    factors.append(FactorScore("expansion_potential", weights.expansion_potential, None, "no plan catalog data yet"))

    known_weight = sum(f.weight for f in factors if f.fraction is not None)
    score = round(100 * sum(f.points for f in factors) / known_weight) if known_weight else 0
    return ScoreCard(score=score, tier=tier_for(score, config), factors=tuple(factors))


def top_drivers(card: ScoreCard, count: int = 3) -> list[Driver]:
    known = [f for f in card.factors if f.fraction is not None]
    known.sort(key=lambda f: f.points, reverse=True)
    return [Driver(factor=f.factor, points=round(f.points, 2), detail=f.detail) for f in known[:count]]


@dataclass(frozen=True)
class AccountView:
    account_id: str
    name: str
    csm: str | None = None
    slack_channel: str | None = None


def build_alert(signal: Signal, account: AccountView, card: ScoreCard, inputs: ScoreInputs, now: datetime) -> Alert:
    return Alert(
        alert_id=f"alert:{signal.signal_id}",
        account_id=signal.account_id,
        account_name=account.name,
        signal=signal,
        score=card.score,
        tier=card.tier,
        drivers=top_drivers(card),
        usage=[UsageLine(metric=m, value=u.value, limit=u.limit, utilization=u.utilization) for m, u in sorted(inputs.usage.items())],
        route_to="csm",
        owner=account.csm,
        slack_channel=account.slack_channel,
        created_at=now,
    )
