"""The seeds' 0-100 expansion-readiness model: five weighted parts (product usage, satisfaction, growth,
relationship, expansion potential), each from its bands; a part without data spreads its weight over the rest."""

from __future__ import annotations

from services.scoring.domain.config import ScoringConfig
from services.scoring.domain.facts import Facts
from services.scoring.domain.scorecard import FactorScore, PartScore, ScoreCard, part, round_half_up, share
from shared.schemas import Tier


def _growth_detail(facts: Facts) -> str:
    said = []
    if facts.seat_growth is not None:
        said.append(f"{facts.new_domain_users} new user(s) from the customer's domains ({share(facts.seat_growth)} of seats)")
    if facts.usage_growth is not None:
        said.append(f"usage {facts.usage_growth:+.0%} week over week")
    return "; ".join(said)


class ReadinessModel:
    """The seeds' 0-100 expansion-readiness score: five weighted parts, each from its bands."""

    name = "readiness"

    def __init__(self, config: ScoringConfig) -> None:
        self.config = config

    def parts(self, facts: Facts) -> dict[str, tuple[PartScore, ...]]:
        bands = self.config.bands
        traits = facts.traits
        peak_detail = f"{facts.peak_metric} at {share(facts.peak_utilization)} of its limit"
        return {
            "product_usage": (
                part("adoption_rate", bands.product_usage.adoption_rate, facts.peak_utilization, peak_detail),
                part(
                    "weekly_active_share",
                    bands.product_usage.weekly_active_share,
                    traits.weekly_active_share,
                    f"{share(traits.weekly_active_share)} weekly active",
                ),
                part(
                    "feature_breadth",
                    bands.product_usage.feature_breadth,
                    traits.feature_breadth,
                    f"{share(traits.feature_breadth)} of features used",
                ),
            ),
            "satisfaction": (
                part("nps", bands.satisfaction.nps, facts.nps, f"NPS {facts.nps:g}" if facts.nps is not None else ""),
                part("csat", bands.satisfaction.csat, facts.csat, f"CSAT {facts.csat:.1f}" if facts.csat is not None else ""),
                part(
                    "support_ticket_trend",
                    bands.satisfaction.support_ticket_trend,
                    facts.support_trend,
                    f"support tickets {facts.support_trend}",
                ),
            ),
            "growth": (
                part(
                    "team_growth",
                    bands.growth.team_growth,
                    facts.team_growth,
                    _growth_detail(facts),
                ),
                part("funding", bands.growth.funding, traits.funding, f"funding: {traits.funding}"),
                part("open_roles", bands.growth.open_roles, traits.open_roles, f"{traits.open_roles} open roles"),
            ),
            "relationship": (
                part(
                    "engaged_stakeholders",
                    bands.relationship.engaged_stakeholders,
                    traits.engaged_stakeholders,
                    f"{traits.engaged_stakeholders} engaged stakeholders",
                ),
                part(
                    "executive_sponsor",
                    bands.relationship.executive_sponsor,
                    traits.executive_sponsor,
                    f"executive sponsor: {traits.executive_sponsor}",
                ),
            ),
            "expansion_potential": (
                part(
                    "acv_vs_segment",
                    bands.expansion_potential.acv_vs_segment,
                    facts.acv_vs_segment,
                    f"ARR {facts.account.arr:,.0f} is {facts.acv_vs_segment or 0:.2f}× the segment average",
                ),
                part(
                    "expansion_options",
                    bands.expansion_potential.expansion_options,
                    facts.estimate.options,
                    f"{facts.estimate.options} higher plan(s) in the catalog",
                ),
            ),
        }

    def score(self, facts: Facts) -> ScoreCard:
        weights = self.config.weights.model_dump()
        factors = []
        for factor, parts in self.parts(facts).items():
            known = [part for part in parts if part.points is not None]
            if not known:
                factors.append(FactorScore(factor, weights[factor], None, "no data yet", parts))
                continue
            fraction = sum(part.points or 0.0 for part in known) / sum(part.max_points for part in known)
            detail = "; ".join(part.detail for part in known)
            factors.append(FactorScore(factor, weights[factor], fraction, detail, parts))
        known_weight = sum(f.weight for f in factors if f.fraction is not None)
        score = round_half_up(100 * sum(f.points for f in factors) / known_weight) if known_weight else 0
        tier = tier_for(score, self.config)
        return ScoreCard(self.name, score, tier, ACTIONS[tier], tuple(factors))


ACTIONS = {
    Tier.IMMEDIATE: "reach out this week",
    Tier.SHORT_TERM: "include in the next outreach cycle",
    Tier.MEDIUM_TERM: "nurture and monitor",
    Tier.LOW: "focus on adoption before expansion",
}


def tier_for(score: int, config: ScoringConfig) -> Tier:
    bounds = config.tiers
    if score >= bounds.immediate:
        return Tier.IMMEDIATE
    if score >= bounds.short_term:
        return Tier.SHORT_TERM
    if score >= bounds.medium_term:
        return Tier.MEDIUM_TERM
    return Tier.LOW
