"""The scoring service's section of the YAML config: the readiness and opportunity models, health, routing
(outcomes has its own: services/scoring/outcomes/domain/config.py)."""

from __future__ import annotations

import math
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from shared.config import Section


class Weights(Section):
    """Weights of a score's parts, in points: they must add up to 100."""

    @model_validator(mode="after")
    def _sum_to_100(self) -> Self:
        total = sum(self.model_dump().values())
        if abs(total - 100) > 1e-9:
            raise ValueError(f"weights must add up to 100, they add up to {total:g}")
        return self


class ScoreWeights(Weights):
    """The five parts of the seeds' readiness model."""

    product_usage: float = Field(default=30, ge=0)
    satisfaction: float = Field(default=25, ge=0)
    growth: float = Field(default=20, ge=0)
    relationship: float = Field(default=15, ge=0)
    expansion_potential: float = Field(default=10, ge=0)


class TierBounds(Section):
    """Lower bounds of each tier (inclusive); below `medium_term` is Low."""

    immediate: int = Field(default=80, ge=0, le=100)
    short_term: int = Field(default=60, ge=0, le=100)
    medium_term: int = Field(default=40, ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> TierBounds:
        if not self.immediate > self.short_term > self.medium_term:
            raise ValueError("tier bounds must satisfy immediate > short_term > medium_term")
        return self


class Band(Section):
    """One band of a factor: numeric [min, max) (a value on a boundary takes the higher band) or a named value."""

    min: float | None = None
    max: float | None = None
    value: str | None = None
    points: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Band:
        if self.value is not None and (self.min is not None or self.max is not None):
            raise ValueError("a band is numeric (min/max) or named (value), not both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min {self.min:g} must be below max {self.max:g}")
        return self


def _check_bands(bands: list[Band]) -> list[Band]:
    if not bands:
        raise ValueError("at least one band is needed")
    named = [band.value for band in bands if band.value is not None]
    if named:
        if len(named) != len(bands):
            raise ValueError("bands must be all numeric or all named")
        if len(set(named)) != len(named):
            raise ValueError(f"named bands repeat a value: {named}")
        return bands
    ordered = sorted(bands, key=lambda band: -math.inf if band.min is None else band.min)
    for lower, upper in zip(ordered, ordered[1:], strict=False):
        upper_min = -math.inf if upper.min is None else upper.min
        if lower.max is None or lower.max > upper_min:
            raise ValueError(f"bands overlap: [{lower.min}, {lower.max}) and [{upper.min}, {upper.max})")
    return bands


Bands = Annotated[list[Band], AfterValidator(_check_bands)]


def _bands(*rows: tuple[float | None, float | None, float]) -> list[Band]:
    return [Band(min=low, max=high, points=points) for low, high, points in rows]


def _named(**points: float) -> list[Band]:
    return [Band(value=value, points=p) for value, p in points.items()]


class ProductUsageBands(Section):
    """Shares are fractions (0.7 = 70 %)."""

    adoption_rate: Bands = _bands((0.7, None, 15), (0.5, 0.7, 10), (0.3, 0.5, 5), (None, 0.3, 2))
    weekly_active_share: Bands = _bands((0.6, None, 8), (0.4, 0.6, 5), (0.2, 0.4, 3), (None, 0.2, 1))
    feature_breadth: Bands = _bands((0.5, None, 7), (0.3, 0.5, 4), (0.2, 0.3, 2), (None, 0.2, 1))


class SatisfactionBands(Section):
    nps: Bands = _bands((9, None, 15), (7, 9, 8), (None, 7, 2))
    csat: Bands = _bands((4.5, None, 5), (4.0, 4.5, 3), (None, 4.0, 1))
    support_ticket_trend: Bands = _named(decreasing=5, stable=3, increasing=1)


class GrowthBands(Section):
    team_growth: Bands = _bands((0.3, None, 8), (0.1, 0.3, 5), (0, 0.1, 3), (None, 0, 1))
    funding: Bands = _named(recent_round=6, revenue_growth=4, none=2)
    open_roles: Bands = _bands((20, None, 6), (5, 20, 4), (None, 5, 1))


class RelationshipBands(Section):
    engaged_stakeholders: Bands = _bands((6, None, 8), (3, 6, 5), (None, 3, 2))
    executive_sponsor: Bands = _named(active=7, moderate=4, limited=1)


class ExpansionPotentialBands(Section):
    """`acv_vs_segment` is the account's ARR over `segment_average_acv`."""

    acv_vs_segment: Bands = _bands((None, 0.9, 5), (0.9, 1.1, 3), (1.1, None, 1))
    expansion_options: Bands = _bands((3, None, 5), (1, 3, 3), (None, 1, 1))


class ReadinessBands(Section):
    product_usage: ProductUsageBands = ProductUsageBands()
    satisfaction: SatisfactionBands = SatisfactionBands()
    growth: GrowthBands = GrowthBands()
    relationship: RelationshipBands = RelationshipBands()
    expansion_potential: ExpansionPotentialBands = ExpansionPotentialBands()


class OpportunityConfig(Section):
    """The seeds' simpler 1-10 opportunity score: each dimension 1-10, the score is their mean."""

    revenue_potential: Bands = _bands((1.0, None, 10), (0.5, 1.0, 8), (0.2, 0.5, 6), (0.05, 0.2, 4), (None, 0.05, 2))
    usage_trajectory: Bands = _bands((0.95, None, 10), (0.9, 0.95, 8), (0.8, 0.9, 6), (0.5, 0.8, 4), (None, 0.5, 2))
    competitive_safety: Bands = _bands((80, None, 10), (70, 80, 7), (50, 70, 4), (None, 50, 1))
    strategic_importance: Bands = _bands((2.0, None, 10), (1.1, 2.0, 7), (0.9, 1.1, 5), (None, 0.9, 3))
    decision_maker_access: Bands = _named(active=10, moderate=6, limited=2)
    immediate: int = Field(default=8, ge=1, le=10)
    quarterly: int = Field(default=6, ge=1, le=10)
    annual: int = Field(default=4, ge=1, le=10)

    @model_validator(mode="after")
    def _descending(self) -> OpportunityConfig:
        if not self.immediate > self.quarterly > self.annual:
            raise ValueError("action triggers must satisfy immediate > quarterly > annual")
        return self


class HealthWeights(Weights):
    satisfaction: float = Field(default=40, ge=0)
    support_trend: float = Field(default=20, ge=0)
    billing: float = Field(default=20, ge=0)
    usage_trend: float = Field(default=20, ge=0)


class HealthConfig(Section):
    """Below `threshold` (or with an open billing issue) an account gets a retention alert, not an expansion one."""

    threshold: float = Field(default=70, ge=0, le=100)
    weights: HealthWeights = HealthWeights()
    trend_window_days: int = Field(default=30, ge=1)
    trend_tolerance: float = Field(default=0.2, ge=0, lt=1)
    billing_resolved_kinds: list[str] = ["resolved", "paid", "payment_succeeded"]
    billing_issue_open_days: int = Field(default=30, ge=1)


class RoutingConfig(Section):
    """The seeds' ownership table: small upsell → CSM; large upsell, cross-sell, strategic → AE with the CSM."""

    large_upsell_share: float = Field(default=0.2, gt=0)
    strategic_share: float = Field(default=1.0, gt=0)
    default_owner: str | None = None
    # expansion alerts below this tier are not actionable (the seeds: "focus on adoption before expansion")
    min_alert_tier: Literal["immediate", "short_term", "medium_term", "low"] = "medium_term"


class ScoringConfig(Section):
    model: Literal["readiness", "opportunity"] = "readiness"
    weights: ScoreWeights = ScoreWeights()
    tiers: TierBounds = TierBounds()
    bands: ReadinessBands = ReadinessBands()
    segment_average_acv: float = Field(default=50_000, gt=0)
    opportunity: OpportunityConfig = OpportunityConfig()
    health: HealthConfig = HealthConfig()
    routing: RoutingConfig = RoutingConfig()
