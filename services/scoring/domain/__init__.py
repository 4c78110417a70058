"""Scoring's pure logic: account state from signals and events, health, money, the pluggable models, alerts.

Every band, weight and threshold comes from `ScoringConfig` (the YAML config). A part with no data is
reported missing and its weight is spread over the parts that have data, never scored as zero silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from services.scoring.domain.config import Band, HealthConfig, OpportunityConfig, ScoringConfig
from shared.schemas import (
    Alert,
    BillingIssueEvent,
    CsatEvent,
    Driver,
    NpsEvent,
    PlanUpsert,
    Signal,
    SignalType,
    SubscriptionChangedEvent,
    SupportTicketEvent,
    Tier,
    UsageLine,
)

HealthEvent = NpsEvent | CsatEvent | SupportTicketEvent | BillingIssueEvent | SubscriptionChangedEvent
HEALTH_EVENT_TYPES = ("nps", "csat", "support_ticket", "billing_issue", "subscription_changed")
RECENT_EVENT_IDS = 500
RECENT_CSAT = 10
RECENT_TIMES = 200

# ----------------------------------------------------------------------------- state


class UsageSnapshot(BaseModel):
    value: float
    limit: float
    utilization: float
    at: datetime | None = None


class Traits(BaseModel):
    """Facts that only a CRM knows; scored when present, reported missing otherwise."""

    weekly_active_share: float | None = None
    feature_breadth: float | None = None
    funding: str | None = None
    open_roles: int | None = None
    engaged_stakeholders: int | None = None
    executive_sponsor: str | None = None


class AccountState(BaseModel):
    """What scoring has learnt about an account from its signals and health events (stored as JSON)."""

    usage: dict[str, UsageSnapshot] = Field(default_factory=dict)
    domain_users: list[str] = Field(default_factory=list)
    usage_signal_times: list[datetime] = Field(default_factory=list)
    usage_growth: float | None = None  # the latest usage_growth signal: this week over last, minus 1
    nps: float | None = None
    csat: list[float] = Field(default_factory=list)
    ticket_times: list[datetime] = Field(default_factory=list)
    billing_seen: bool = False
    billing_issue_open_since: datetime | None = None
    billing_issue_kind: str | None = None
    subscription_arr: float | None = None
    subscription_plan: str | None = None
    subscription_at: datetime | None = None
    downgrade_times: list[datetime] = Field(default_factory=list)
    traits: Traits = Field(default_factory=Traits)
    event_ids: list[str] = Field(default_factory=list)
    as_of: datetime | None = None


def _later(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None or moment > current else current


def record_signal(state: AccountState, signal: Signal) -> AccountState:
    updated = state.model_copy(deep=True)
    updated.as_of = _later(state.as_of, signal.event_timestamp)
    if (
        signal.metric
        and signal.limit
        and signal.type
        in (
            SignalType.USAGE_THRESHOLD_CROSSED,
            SignalType.USAGE_SUSTAINED_HIGH,
            SignalType.SEAT_THRESHOLD_CROSSED,
        )
    ):
        utilization = signal.utilization if signal.utilization is not None else (signal.value or 0.0) / signal.limit
        updated.usage[signal.metric] = UsageSnapshot(
            value=signal.value or 0.0, limit=signal.limit, utilization=utilization, at=signal.event_timestamp
        )
    if signal.type == SignalType.NEW_DOMAIN_USER and signal.user and signal.user.email not in updated.domain_users:
        updated.domain_users.append(signal.user.email)
    if signal.type == SignalType.USAGE_GROWTH and signal.growth is not None:
        updated.usage_growth = signal.growth
    if signal.type in (SignalType.USAGE_THRESHOLD_CROSSED, SignalType.USAGE_SUSTAINED_HIGH, SignalType.USAGE_GROWTH):
        updated.usage_signal_times = [*updated.usage_signal_times, signal.event_timestamp][-RECENT_TIMES:]
    return updated


def record_event(state: AccountState, event: HealthEvent, health: HealthConfig) -> AccountState | None:
    """None when the event was seen before: a replayed health event changes nothing."""
    if event.id in state.event_ids:
        return None
    updated = state.model_copy(deep=True)
    updated.event_ids = [*updated.event_ids, event.id][-RECENT_EVENT_IDS:]
    updated.as_of = _later(state.as_of, event.timestamp)
    if isinstance(event, NpsEvent):
        updated.nps = float(event.score)
    elif isinstance(event, CsatEvent):
        updated.csat = [*updated.csat, event.score][-RECENT_CSAT:]
    elif isinstance(event, SupportTicketEvent):
        if event.status in ("open", "pending"):
            updated.ticket_times = [*updated.ticket_times, event.timestamp][-RECENT_TIMES:]
    elif isinstance(event, BillingIssueEvent):
        updated.billing_seen = True
        if event.kind.lower() in {kind.lower() for kind in health.billing_resolved_kinds}:
            updated.billing_issue_open_since = None
            updated.billing_issue_kind = None
        else:
            updated.billing_issue_open_since = event.timestamp
            updated.billing_issue_kind = event.kind
    else:
        if updated.subscription_at is None or event.timestamp >= updated.subscription_at:
            updated.subscription_arr = event.arr_after
            updated.subscription_plan = event.plan or updated.subscription_plan
            updated.subscription_at = event.timestamp
        if event.arr_after < event.arr_before:
            updated.downgrade_times = [*updated.downgrade_times, event.timestamp][-RECENT_TIMES:]
    return updated


@dataclass(frozen=True)
class AccountView:
    account_id: str
    name: str
    plan: str | None = None
    arr: float = 0.0
    limits: Mapping[str, float] = field(default_factory=dict)
    csm: str | None = None
    ae: str | None = None
    slack_channel: str | None = None
    updated_at: datetime | None = None

    def current(self, state: AccountState) -> AccountView:
        """A subscription change newer than the account record wins for ARR and plan."""
        if state.subscription_at is None or (self.updated_at is not None and self.updated_at >= state.subscription_at):
            return self
        return AccountView(
            self.account_id,
            self.name,
            state.subscription_plan or self.plan,
            state.subscription_arr if state.subscription_arr is not None else self.arr,
            self.limits,
            self.csm,
            self.ae,
            self.slack_channel,
            self.updated_at,
        )


# ----------------------------------------------------------------------------- bands


def band_points(bands: list[Band], value: float | str) -> float | None:
    """Numeric bands are [min, max); None when the value falls in no band (a gap in the config)."""
    for band in bands:
        if band.value is not None:
            if isinstance(value, str) and band.value == value:
                return band.points
            continue
        if isinstance(value, str):
            continue
        if (band.min is None or value >= band.min) and (band.max is None or value < band.max):
            return band.points
    return None


def round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


# ----------------------------------------------------------------------------- health


@dataclass(frozen=True)
class Health:
    score: float | None  # None: no health data yet (unknown is not at risk)
    billing_issue_open: bool
    parts: dict[str, float]
    support_trend: Literal["decreasing", "stable", "increasing"] | None
    recent_contraction: bool = False  # a downgrade or churn within the trend window


def _trend(times: list[datetime], as_of: datetime, window: timedelta, tolerance: float) -> Literal["decreasing", "stable", "increasing"]:
    recent = sum(1 for t in times if as_of - window < t <= as_of)
    previous = sum(1 for t in times if as_of - 2 * window < t <= as_of - window)
    if previous == 0:
        return "increasing" if recent > 0 else "stable"
    ratio = recent / previous
    if ratio > 1 + tolerance:
        return "increasing"
    if ratio < 1 - tolerance:
        return "decreasing"
    return "stable"


def health_of(state: AccountState, config: HealthConfig) -> Health:
    """0-100 from satisfaction, support trend, billing issues and usage trend; known parts only."""
    as_of = state.as_of
    window = timedelta(days=config.trend_window_days)
    parts: dict[str, float] = {}
    satisfaction = []
    if state.nps is not None:
        satisfaction.append(state.nps / 10)
    if state.csat:
        satisfaction.append((sum(state.csat) / len(state.csat) - 1) / 4)
    if satisfaction:
        parts["satisfaction"] = sum(satisfaction) / len(satisfaction)
    support_trend = None
    if state.ticket_times and as_of is not None:
        support_trend = _trend(state.ticket_times, as_of, window, config.trend_tolerance)
        parts["support_trend"] = {"decreasing": 1.0, "stable": 0.7, "increasing": 0.3}[support_trend]
    billing_open = state.billing_issue_open_since is not None and (
        as_of is None or as_of - state.billing_issue_open_since < timedelta(days=config.billing_issue_open_days)
    )
    if state.billing_seen:
        parts["billing"] = 0.0 if billing_open else 1.0
    recent_contraction = as_of is not None and any(as_of - window < t <= as_of for t in state.downgrade_times)
    if not parts:
        return Health(None, False, {}, None, recent_contraction)
    if as_of is not None and (state.usage_signal_times or state.downgrade_times):
        if any(as_of - window < t <= as_of for t in state.downgrade_times):
            parts["usage_trend"] = 0.2
        elif any(as_of - window < t <= as_of for t in state.usage_signal_times):
            parts["usage_trend"] = 1.0
        else:
            parts["usage_trend"] = 0.5
    weights = config.weights.model_dump()
    known = sum(weights[name] for name in parts)
    score = round(100 * sum(weights[name] * value for name, value in parts.items()) / known, 1) if known else None
    return Health(score, billing_open, parts, support_trend, recent_contraction)


# ----------------------------------------------------------------------------- money


@dataclass(frozen=True)
class ExpansionEstimate:
    amount: float | None  # None: the account's plan is not in the catalog
    basis: str
    options: int | None  # plans above the current one


def _plans_above(plan_id: str, catalog: Mapping[str, PlanUpsert]) -> int:
    seen = {plan_id}
    current = catalog[plan_id].next_plan
    while current is not None and current in catalog and current not in seen:
        seen.add(current)
        current = catalog[current].next_plan
    return len(seen) - 1


def estimate_expansion(account: AccountView, usage: Mapping[str, UsageSnapshot], catalog: Mapping[str, PlanUpsert]) -> ExpansionEstimate:
    """The larger of moving to the next plan (price difference) and paying for what is over the limits
    (units over each limit × the plan's price per unit, seats included); plan prices are ARR."""
    plan = catalog.get(account.plan) if account.plan else None
    if plan is None:
        return ExpansionEstimate(None, f"plan {account.plan!r} is not in the catalog" if account.plan else "no plan on record", None)
    upgrade = 0.0
    upgrade_basis = ""
    following = catalog.get(plan.next_plan) if plan.next_plan else None
    if following is not None and following.price > plan.price:
        upgrade = following.price - plan.price
        upgrade_basis = f"upgrade {account.plan} → {plan.next_plan} (+{upgrade:,.0f})"
    overage = 0.0
    overage_parts = []
    for metric, snapshot in sorted(usage.items()):
        limit = account.limits.get(metric) or plan.limits.get(metric) or snapshot.limit
        over = snapshot.value - limit
        if over <= 0 or limit <= 0:
            continue
        unit_price = plan.price / (plan.limits.get(metric) or limit)
        overage += over * unit_price
        overage_parts.append(f"{over:g} {metric} over the limit × {unit_price:,.2f}")
    if upgrade == 0 and overage == 0:
        return ExpansionEstimate(0.0, "nothing over the limits and no higher plan", _plans_above(account.plan, catalog))  # type: ignore[arg-type]
    if upgrade >= overage:
        return ExpansionEstimate(round(upgrade, 2), upgrade_basis, _plans_above(account.plan, catalog))  # type: ignore[arg-type]
    return ExpansionEstimate(round(overage, 2), "; ".join(overage_parts), _plans_above(account.plan, catalog))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- facts and models


@dataclass(frozen=True)
class Facts:
    """Everything a model scores, derived once; None means no data."""

    account: AccountView
    peak_metric: str | None
    peak_utilization: float | None
    team_growth: float | None  # the larger of seat growth and usage growth: the seeds' headcount growth, as we see it
    new_domain_users: int
    nps: float | None
    csat: float | None
    support_trend: str | None
    traits: Traits
    acv_vs_segment: float | None
    estimate: ExpansionEstimate
    health: Health
    seat_growth: float | None = None
    usage_growth: float | None = None


def facts_for(account: AccountView, state: AccountState, catalog: Mapping[str, PlanUpsert], config: ScoringConfig) -> Facts:
    account = account.current(state)
    peak_metric, peak = None, None
    if state.usage:
        peak_metric, snapshot = max(state.usage.items(), key=lambda item: item[1].utilization)
        peak = snapshot.utilization
    seats = account.limits.get("seats") or (state.usage["seats"].limit if "seats" in state.usage else None)
    seat_growth = len(state.domain_users) / seats if seats and state.domain_users else None
    growths = [g for g in (seat_growth, state.usage_growth) if g is not None]
    team_growth = max(growths) if growths else None
    health = health_of(state, config.health)
    return Facts(
        account=account,
        peak_metric=peak_metric,
        peak_utilization=peak,
        team_growth=team_growth,
        new_domain_users=len(state.domain_users),
        seat_growth=seat_growth,
        usage_growth=state.usage_growth,
        nps=state.nps,
        csat=sum(state.csat) / len(state.csat) if state.csat else None,
        support_trend=health.support_trend,
        traits=state.traits,
        acv_vs_segment=account.arr / config.segment_average_acv if account.arr > 0 else None,
        estimate=estimate_expansion(account, state.usage, catalog),
        health=health,
    )


@dataclass(frozen=True)
class PartScore:
    name: str
    points: float | None  # None: no data
    max_points: float
    detail: str


@dataclass(frozen=True)
class FactorScore:
    factor: str
    weight: float
    fraction: float | None  # None: no data for this part
    detail: str
    parts: tuple[PartScore, ...] = ()

    @property
    def points(self) -> float:
        return self.weight * (self.fraction or 0.0)


@dataclass(frozen=True)
class ScoreCard:
    model: str
    score: int  # 0-100
    tier: Tier
    action: str
    factors: tuple[FactorScore, ...]

    @property
    def missing(self) -> list[str]:
        return [factor.factor for factor in self.factors if factor.fraction is None]

    def breakdown(self) -> dict[str, object]:
        return {
            "model": self.model,
            "score": self.score,
            "tier": self.tier.value,
            "action": self.action,
            "missing": self.missing,
            "factors": [
                {
                    "factor": f.factor,
                    "weight": f.weight,
                    "points": None if f.fraction is None else round(f.points, 2),
                    "detail": f.detail,
                    "parts": [{"name": p.name, "points": p.points, "max": p.max_points, "detail": p.detail} for p in f.parts],
                }
                for f in self.factors
            ],
        }


class ScoringModel(Protocol):
    name: str

    def score(self, facts: Facts) -> ScoreCard: ...


def _part(name: str, bands: list[Band], value: float | str | None, detail: str) -> PartScore:
    top = max(band.points for band in bands)
    if value is None:
        return PartScore(name, None, top, f"no {name.replace('_', ' ')} data")
    return PartScore(name, band_points(bands, value), top, detail)


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _growth_detail(facts: Facts) -> str:
    said = []
    if facts.seat_growth is not None:
        said.append(f"{facts.new_domain_users} new user(s) from the customer's domains ({_share(facts.seat_growth)} of seats)")
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
        peak_detail = f"{facts.peak_metric} at {_share(facts.peak_utilization)} of its limit"
        return {
            "product_usage": (
                _part("adoption_rate", bands.product_usage.adoption_rate, facts.peak_utilization, peak_detail),
                _part(
                    "weekly_active_share",
                    bands.product_usage.weekly_active_share,
                    traits.weekly_active_share,
                    f"{_share(traits.weekly_active_share)} weekly active",
                ),
                _part(
                    "feature_breadth",
                    bands.product_usage.feature_breadth,
                    traits.feature_breadth,
                    f"{_share(traits.feature_breadth)} of features used",
                ),
            ),
            "satisfaction": (
                _part("nps", bands.satisfaction.nps, facts.nps, f"NPS {facts.nps:g}" if facts.nps is not None else ""),
                _part("csat", bands.satisfaction.csat, facts.csat, f"CSAT {facts.csat:.1f}" if facts.csat is not None else ""),
                _part(
                    "support_ticket_trend",
                    bands.satisfaction.support_ticket_trend,
                    facts.support_trend,
                    f"support tickets {facts.support_trend}",
                ),
            ),
            "growth": (
                _part(
                    "team_growth",
                    bands.growth.team_growth,
                    facts.team_growth,
                    _growth_detail(facts),
                ),
                _part("funding", bands.growth.funding, traits.funding, f"funding: {traits.funding}"),
                _part("open_roles", bands.growth.open_roles, traits.open_roles, f"{traits.open_roles} open roles"),
            ),
            "relationship": (
                _part(
                    "engaged_stakeholders",
                    bands.relationship.engaged_stakeholders,
                    traits.engaged_stakeholders,
                    f"{traits.engaged_stakeholders} engaged stakeholders",
                ),
                _part(
                    "executive_sponsor",
                    bands.relationship.executive_sponsor,
                    traits.executive_sponsor,
                    f"executive sponsor: {traits.executive_sponsor}",
                ),
            ),
            "expansion_potential": (
                _part(
                    "acv_vs_segment",
                    bands.expansion_potential.acv_vs_segment,
                    facts.acv_vs_segment,
                    f"ARR {facts.account.arr:,.0f} is {facts.acv_vs_segment or 0:.2f}× the segment average",
                ),
                _part(
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
                f"{facts.peak_metric} at {_share(facts.peak_utilization)}",
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
            part = _part(name, bands, value, detail)
            fraction = None if part.points is None else part.points / 10
            factors.append(FactorScore(name, 10.0, fraction, part.detail if fraction is not None else "no data yet", (part,)))
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


MODELS: dict[str, type[ReadinessModel] | type[OpportunityModel]] = {"readiness": ReadinessModel, "opportunity": OpportunityModel}


def model_for(config: ScoringConfig) -> ScoringModel:
    return MODELS[config.model](config)


# ----------------------------------------------------------------------------- explanations and alerts


def top_drivers(card: ScoreCard, count: int = 3) -> list[Driver]:
    known = [f for f in card.factors if f.fraction is not None]
    known.sort(key=lambda f: f.points, reverse=True)
    return [Driver(factor=f.factor, points=round(f.points, 2), detail=f.detail) for f in known[:count]]


def changes_since(previous: Mapping[str, object] | None, card: ScoreCard) -> list[str]:
    """Plain sentences comparing this score's breakdown with the one stored before it."""
    if not previous:
        return ["first score for this account"]
    changes = []
    before = previous.get("score")
    if isinstance(before, int) and before != card.score:
        changes.append(f"score {before} → {card.score} ({card.score - before:+d})")
    if previous.get("tier") != card.tier.value:
        changes.append(f"tier {previous.get('tier')} → {card.tier.value}")
    old_factors = {f["factor"]: f for f in previous.get("factors", []) if isinstance(f, dict)}  # type: ignore[union-attr]
    for factor in card.factors:
        old = old_factors.get(factor.factor)
        old_points = old.get("points") if old else None
        new_points = None if factor.fraction is None else round(factor.points, 2)
        if old_points is None and new_points is not None:
            changes.append(f"{factor.factor} now known: {factor.detail}")
        elif old_points is not None and new_points is None:
            changes.append(f"{factor.factor} no longer known")
        elif old_points is not None and new_points is not None and abs(new_points - old_points) >= 0.01:
            changes.append(f"{factor.factor} {new_points - old_points:+.1f} ({factor.detail})")
    return changes or ["no change in the score"]


@dataclass(frozen=True)
class Route:
    motion: Literal["upsell", "cross_sell", "strategic"] | None
    route_to: Literal["csm", "ae"]
    owner: str | None
    informed: list[str]


CROSS_SELL_SIGNALS = (SignalType.PREMIUM_FEATURE_INTEREST, SignalType.NEW_TEAM_ADOPTION)


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
        return Route(motion, "csm", csm, [ae] if account.ae and ae != csm else [])
    return Route(motion, "ae", ae, [csm] if account.csm and csm != ae else [])


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


def build_alert(
    signal: Signal,
    facts: Facts,
    card: ScoreCard,
    state: AccountState,
    previous_breakdown: Mapping[str, object] | None,
    config: ScoringConfig,
    now: datetime,
) -> Alert:
    reason = gate(facts, config)
    path = route(signal, facts, config, retention=reason is not None)
    account = facts.account
    return Alert(
        alert_id=f"alert:{signal.signal_id}",
        kind="retention_risk" if reason else "expansion",
        account_id=signal.account_id,
        account_name=account.name,
        signal=signal,
        score=card.score,
        tier=card.tier,
        drivers=top_drivers(card),
        changes=changes_since(previous_breakdown, card),
        usage=[UsageLine(metric=m, value=u.value, limit=u.limit, utilization=u.utilization) for m, u in sorted(state.usage.items())],
        motion=path.motion,
        expansion_arr=None if reason else facts.estimate.amount,
        arr=account.arr,
        health=facts.health.score,
        route_to=path.route_to,
        owner=path.owner,
        informed=path.informed,
        slack_channel=account.slack_channel,
        created_at=now,
        expansion_basis=None if reason else facts.estimate.basis,
        reason=reason,
        action=card.action if not reason else "retention: address the account's health before expanding",
    )
