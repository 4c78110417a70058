"""The seeds' simpler 1-10 opportunity model (`scoring.model: opportunity`) with its action triggers."""

from __future__ import annotations

from services.scoring.domain.config import OpportunityConfig, ScoringConfig
from services.scoring.domain.facts import Facts
from services.scoring.domain.scorecard import FactorScore, ScoreCard, part, round_half_up, share
from shared.schemas import Tier


class OpportunityModel:
    """The seeds' simpler 1-10 opportunity score (mean of five 1-10 dimensions) with its action triggers.

    The alert's 0-100 score is the 1-10 score × 10, so one scale travels downstream.
    """

    name = "opportunity"

    def __init__(self, config: ScoringConfig) -> None:
        self.config = config

    def score(self, facts: Facts) -> ScoreCard:
        settings: OpportunityConfig = self.config.opportunity
        arr = facts.account.arr
        potential = facts.estimate.amount / arr if facts.estimate.amount is not None and arr > 0 else None
        health = facts.health.score
        dimensions = [
            (
                "revenue_potential",
                settings.revenue_potential,
                potential,
                f"expansion {facts.estimate.amount or 0:,.0f} on ARR {arr:,.0f}",
            ),
            (
                "usage_trajectory",
                settings.usage_trajectory,
                facts.peak_utilization,
                f"{facts.peak_metric} at {share(facts.peak_utilization)}",
            ),
            ("competitive_safety", settings.competitive_safety, health, f"health {health}"),
            ("strategic_importance", settings.strategic_importance, facts.acv_vs_segment, f"ARR {facts.acv_vs_segment or 0:.2f}× segment"),
            (
                "decision_maker_access",
                settings.decision_maker_access,
                facts.traits.executive_sponsor,
                f"executive sponsor: {facts.traits.executive_sponsor}",
            ),
        ]
        factors = []
        for name, bands, value, detail in dimensions:
            scored = part(name, bands, value, detail)
            fraction = None if scored.points is None else scored.points / 10
            factors.append(FactorScore(name, 10.0, fraction, scored.detail if fraction is not None else "no data yet", (scored,)))
        known = [f.points for f in factors if f.fraction is not None]
        raw = min(10, max(1, round_half_up(sum(known) / len(known)))) if known else 1
        if raw >= settings.immediate:
            tier, action = Tier.IMMEDIATE, "immediate expansion conversation"
        elif raw >= settings.quarterly:
            tier, action = Tier.SHORT_TERM, "quarterly expansion review"
        elif raw >= settings.annual:
            tier, action = Tier.MEDIUM_TERM, "annual expansion assessment"
        else:
            tier, action = Tier.LOW, "retention focus mode"
        return ScoreCard(self.name, raw * 10, tier, f"{raw}/10: {action}", tuple(factors))
