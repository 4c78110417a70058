"""The scoring model pinned against hand-worked examples from the seeds' bands (002, "Expansion readiness score")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.config import parse_config
from services.scoring.domain.alerts import build_alert, changes_since, top_drivers
from services.scoring.domain.config import ScoringConfig
from services.scoring.domain.estimates import ExpansionEstimate, estimate_expansion
from services.scoring.domain.facts import Facts, facts_for
from services.scoring.domain.health import Health, health_of
from services.scoring.domain.models import model_for
from services.scoring.domain.opportunity import OpportunityModel
from services.scoring.domain.readiness import ReadinessModel, tier_for
from services.scoring.domain.routing import actionable
from services.scoring.domain.state import AccountState, AccountView, Traits, UsageSnapshot, record_event, record_signal
from shared.schemas import (
    BillingIssueEvent,
    CsatEvent,
    NpsEvent,
    PlanUpsert,
    Signal,
    SignalType,
    SubscriptionChangedEvent,
    SupportTicketEvent,
    Tier,
    UserRef,
)

CONFIG = ScoringConfig()
NOW = datetime(2026, 11, 10, tzinfo=UTC)
ACME = AccountView("acme", "Acme Corp", plan="starter", arr=100_000, limits={"seats": 10, "api_calls": 1000}, csm="dana", ae="sam")
CATALOG = {
    "starter": PlanUpsert(limits={"seats": 10, "api_calls": 1000}, price=12_000, next_plan="growth"),
    "growth": PlanUpsert(limits={"seats": 50, "api_calls": 10_000}, price=30_000, next_plan="enterprise"),
    "enterprise": PlanUpsert(limits={"seats": 500}, price=120_000),
}
NO_ESTIMATE = ExpansionEstimate(None, "no plan on record", None)
UNKNOWN_HEALTH = Health(None, False, {}, None)


def facts(
    *,
    adoption: float | None = None,
    traits: Traits | None = None,
    nps: float | None = None,
    csat: float | None = None,
    support: str | None = None,
    team_growth: float | None = None,
    acv: float | None = None,
    estimate: ExpansionEstimate = NO_ESTIMATE,
    health: Health = UNKNOWN_HEALTH,
    account: AccountView = ACME,
) -> Facts:
    return Facts(
        account=account,
        peak_metric="api_calls" if adoption is not None else None,
        peak_utilization=adoption,
        team_growth=team_growth,
        new_domain_users=0,
        nps=nps,
        csat=csat,
        support_trend=support,
        traits=traits or Traits(),
        acv_vs_segment=acv,
        estimate=estimate,
        health=health,
    )


def usage(adoption: float, weekly_active: float, breadth: float) -> dict[str, object]:
    return {"adoption": adoption, "traits": Traits(weekly_active_share=weekly_active, feature_breadth=breadth)}


def threshold_signal(utilization: float, metric: str = "api_calls", limit: float = 1000, signal_type=SignalType.USAGE_THRESHOLD_CROSSED):
    return Signal(
        signal_id=f"s-{metric}-{utilization}",
        type=signal_type,
        account_id="acme",
        metric=metric,
        value=utilization * limit,
        limit=limit,
        utilization=utilization,
        threshold=0.8,
        period="2026-11-01",
        event_id="e1",
        event_timestamp=NOW,
        emitted_at=NOW,
    )


def domain_signal(email: str) -> Signal:
    return Signal(
        signal_id=f"d-{email}",
        type=SignalType.NEW_DOMAIN_USER,
        account_id="acme",
        user=UserRef(id=email, email=email),
        domain=email.split("@")[1],
        event_id="e2",
        event_timestamp=NOW,
        emitted_at=NOW,
    )


# ----------------------------------------------------------------------------- the readiness model


def test_every_part_known_adds_up_the_seeds_points() -> None:
    """Usage 15+5+2=22, satisfaction 15+3+3=21, growth 5+6+4=15, relationship 5+7=12, potential 5+3=8: 78."""
    card = ReadinessModel(CONFIG).score(
        facts(
            adoption=0.75,
            traits=Traits(
                weekly_active_share=0.5,
                feature_breadth=0.25,
                funding="recent_round",
                open_roles=10,
                engaged_stakeholders=4,
                executive_sponsor="active",
            ),
            nps=9,
            csat=4.2,
            support="stable",
            team_growth=0.2,
            acv=0.5,
            estimate=ExpansionEstimate(18_000, "upgrade", 2),
        )
    )
    points = {f.factor: round(f.points, 6) for f in card.factors}
    assert points == {"product_usage": 22, "satisfaction": 21, "growth": 15, "relationship": 12, "expansion_potential": 8}
    assert (card.score, card.tier, card.missing) == (78, Tier.SHORT_TERM, [])
    assert [d.factor for d in top_drivers(card)] == ["product_usage", "satisfaction", "growth"]


def test_missing_parts_spread_their_weight_instead_of_scoring_zero() -> None:
    """Usage 15/15 of what is known (30 of 30), NPS 7 = 8/15 of 25 = 13.33; 43.33 of the 55 known → 78.8 → 79."""
    card = ReadinessModel(CONFIG).score(facts(adoption=0.75, nps=7))
    assert card.missing == ["growth", "relationship", "expansion_potential"]
    assert (card.score, card.tier) == (79, Tier.SHORT_TERM)
    breakdown = card.breakdown()
    assert breakdown["missing"] == card.missing
    growth = next(f for f in breakdown["factors"] if f["factor"] == "growth")
    assert growth["points"] is None and growth["detail"] == "no data yet"


def test_no_data_at_all_scores_zero_and_says_everything_is_missing() -> None:
    card = ReadinessModel(CONFIG).score(facts())
    assert (card.score, card.tier, len(card.missing)) == (0, Tier.LOW, 5)
    assert top_drivers(card) == []


@pytest.mark.parametrize(
    ("adoption", "weekly_active", "breadth", "nps", "score", "tier"),
    [
        # (10 + 5 + 4) = 19/30 and NPS 9 = 15/15: (19 + 25) / 55 = 80.0
        (0.5, 0.4, 0.3, 9, 80, Tier.IMMEDIATE),
        # 30/30 and NPS 8 = 8/15: (30 + 13.33) / 55 = 78.8
        (0.7, 0.6, 0.5, 8, 79, Tier.SHORT_TERM),
        # (5 + 1 + 2) = 8/30 and NPS 10: (8 + 25) / 55 = 60.0
        (0.3, 0.1, 0.2, 10, 60, Tier.SHORT_TERM),
        # 19/30 and NPS 8: (19 + 13.33) / 55 = 58.8
        (0.5, 0.4, 0.3, 8, 59, Tier.MEDIUM_TERM),
        # (10 + 1 + 1) = 12/30 alone: 40.0
        (0.5, 0.1, 0.1, None, 40, Tier.MEDIUM_TERM),
        # (15 + 1 + 2) = 18/30 and NPS 6 = 2/15: (18 + 3.33) / 55 = 38.8
        (0.7, 0.1, 0.2, 6, 39, Tier.LOW),
    ],
)
def test_each_tier_edge(adoption: float, weekly_active: float, breadth: float, nps: float | None, score: int, tier: Tier) -> None:
    """Values on a band's lower edge take that band (0.5 adoption is 50-70 %, NPS 9 is a promoter)."""
    card = ReadinessModel(CONFIG).score(
        facts(adoption=adoption, traits=Traits(weekly_active_share=weekly_active, feature_breadth=breadth), nps=nps)
    )
    assert (card.score, card.tier) == (score, tier)


@pytest.mark.parametrize(
    ("score", "tier"),
    [(100, Tier.IMMEDIATE), (80, Tier.IMMEDIATE), (79, Tier.SHORT_TERM), (60, Tier.SHORT_TERM), (59, Tier.MEDIUM_TERM)]
    + [(40, Tier.MEDIUM_TERM), (39, Tier.LOW), (0, Tier.LOW)],
)
def test_tiers_follow_the_seeds_bands(score: int, tier: Tier) -> None:
    assert tier_for(score, CONFIG) is tier


def test_bands_and_weights_come_from_the_config() -> None:
    config = parse_config(
        {
            "scoring": {
                "weights": {"product_usage": 50, "satisfaction": 5, "growth": 20, "relationship": 15, "expansion_potential": 10},
                "bands": {"satisfaction": {"nps": [{"min": 5, "points": 10}, {"max": 5, "points": 0}]}},
            }
        }
    ).scoring
    # usage 15/15 → 50; NPS 6 is now 10/10 → 5: 55 of 55
    card = ReadinessModel(config).score(facts(adoption=0.8, nps=6))
    assert card.score == 100


# ----------------------------------------------------------------------------- the opportunity model


def test_the_opportunity_model_averages_its_dimensions_and_maps_the_action_triggers() -> None:
    """Revenue potential 0.3 → 6, usage 0.96 → 10, health 85 → 10, ARR at segment average → 5; no sponsor data.
    (6 + 10 + 10 + 5) / 4 = 7.75 → 8: an immediate conversation, 80 on the 0-100 scale."""
    card = OpportunityModel(CONFIG).score(
        facts(adoption=0.96, acv=1.0, estimate=ExpansionEstimate(30_000, "upgrade", 1), health=Health(85, False, {}, None))
    )
    assert (card.score, card.tier, card.missing) == (80, Tier.IMMEDIATE, ["decision_maker_access"])
    assert card.action == "8/10: immediate expansion conversation"


@pytest.mark.parametrize(
    ("adoption", "acv", "expected", "tier"),
    [
        (0.9, 1.0, 7, Tier.SHORT_TERM),  # 8 and 5 → 6.5 → 7: quarterly review
        (0.6, 1.0, 5, Tier.MEDIUM_TERM),  # 4 and 5 → 4.5 → 5: annual assessment
        (0.3, 0.5, 3, Tier.LOW),  # 2 and 3 → 2.5 → 3: retention focus
    ],
)
def test_opportunity_action_triggers(adoption: float, acv: float, expected: int, tier: Tier) -> None:
    card = OpportunityModel(CONFIG).score(facts(adoption=adoption, acv=acv))
    assert (card.score, card.tier) == (expected * 10, tier)


def test_the_model_is_selected_by_config() -> None:
    assert model_for(CONFIG).name == "readiness"
    assert model_for(parse_config({"scoring": {"model": "opportunity"}}).scoring).name == "opportunity"


# ----------------------------------------------------------------------------- state, health, money


def test_signals_build_the_state_usage_and_team_growth() -> None:
    state = record_signal(AccountState(), threshold_signal(0.82))
    state = record_signal(state, threshold_signal(0.96))
    state = record_signal(state, domain_signal("a@acme.com"))
    state = record_signal(state, domain_signal("b@acme.com"))
    state = record_signal(state, domain_signal("a@acme.com"))
    derived = facts_for(ACME, state, {}, CONFIG)
    assert (derived.peak_utilization, derived.team_growth, derived.new_domain_users) == (0.96, 0.2, 2)


def nps(event_id: str, score: int, at: datetime = NOW) -> NpsEvent:
    return NpsEvent(id=event_id, account_id="acme", timestamp=at, type="nps", score=score)


def test_a_replayed_health_event_changes_nothing() -> None:
    state = record_event(AccountState(), nps("n1", 9), CONFIG.health)
    assert state is not None and state.nps == 9
    assert record_event(state, nps("n1", 2), CONFIG.health) is None


def test_health_is_unknown_without_health_data_even_with_usage() -> None:
    state = record_signal(AccountState(), threshold_signal(0.9))
    assert health_of(state, CONFIG.health).score is None


def test_health_weighs_satisfaction_support_billing_and_usage_trend() -> None:
    """NPS 8 → 0.8, CSAT 4 → 0.75: satisfaction 0.775 × 40; tickets 3 recent vs 1 before → increasing 0.3 × 20;
    billing seen and resolved → 1.0 × 20; usage signal within 30 days → 1.0 × 20: (31 + 6 + 20 + 20) = 77."""
    state = AccountState()
    events = [
        nps("n1", 8),
        CsatEvent(id="c1", account_id="acme", timestamp=NOW, type="csat", score=4),
        SupportTicketEvent(
            id="t0", account_id="acme", timestamp=NOW - timedelta(days=40), type="support_ticket", priority="low", status="open"
        ),
        *[
            SupportTicketEvent(
                id=f"t{i}", account_id="acme", timestamp=NOW - timedelta(days=i), type="support_ticket", priority="low", status="open"
            )
            for i in (1, 2, 3)
        ],
        BillingIssueEvent(id="b1", account_id="acme", timestamp=NOW - timedelta(days=5), type="billing_issue", kind="payment_failed"),
        BillingIssueEvent(id="b2", account_id="acme", timestamp=NOW - timedelta(days=4), type="billing_issue", kind="resolved"),
    ]
    for event in events:
        state = record_event(state, event, CONFIG.health) or state
    state = record_signal(state, threshold_signal(0.9))
    health = health_of(state, CONFIG.health)
    assert (health.score, health.support_trend, health.billing_issue_open) == (77.0, "increasing", False)


def test_an_open_billing_issue_closes_after_the_configured_days() -> None:
    issue = BillingIssueEvent(id="b1", account_id="acme", timestamp=NOW, type="billing_issue", kind="payment_failed")
    state = record_event(AccountState(), issue, CONFIG.health)
    assert state is not None and health_of(state, CONFIG.health).billing_issue_open
    later = state.model_copy(update={"as_of": NOW + timedelta(days=31)})
    assert not health_of(later, CONFIG.health).billing_issue_open


def test_a_newer_subscription_change_sets_arr_and_plan() -> None:
    change = SubscriptionChangedEvent(
        id="s1",
        account_id="acme",
        timestamp=NOW,
        type="subscription_changed",
        arr_before=100_000,
        arr_after=130_000,
        plan="growth",
        reason="upgrade",
    )
    state = record_event(AccountState(), change, CONFIG.health)
    assert state is not None
    account = AccountView("acme", "Acme", plan="starter", arr=100_000, updated_at=NOW - timedelta(days=1)).current(state)
    assert (account.plan, account.arr) == ("growth", 130_000)


def test_expansion_money_takes_the_next_plan_when_it_is_worth_more_than_overage() -> None:
    """api_calls 1200 of 1000: 200 × (12,000 / 1000) = 2,400 overage; starter → growth is +18,000."""
    estimate = estimate_expansion(ACME, {"api_calls": UsageSnapshot(value=1200, limit=1000, utilization=1.2)}, CATALOG)
    assert (estimate.amount, estimate.options) == (18_000, 2)
    assert "starter → growth" in estimate.basis


def test_expansion_money_prices_seats_and_metric_overage_on_the_top_plan() -> None:
    """Enterprise has no next plan: 600 seats of 500 → 100 × (120,000 / 500) = 24,000."""
    account = AccountView("acme", "Acme", plan="enterprise", arr=120_000, limits={"seats": 500})
    estimate = estimate_expansion(account, {"seats": UsageSnapshot(value=600, limit=500, utilization=1.2)}, CATALOG)
    assert (estimate.amount, estimate.options) == (24_000, 0)
    assert "100 seats over the limit" in estimate.basis


def test_expansion_money_is_unknown_without_the_plan_in_the_catalog() -> None:
    assert estimate_expansion(ACME, {}, {}).amount is None


# ----------------------------------------------------------------------------- alerts: gating, routing, explanations


def alert_for(signal: Signal, derived: Facts, config: ScoringConfig = CONFIG, previous=None):
    card = ReadinessModel(config).score(derived)
    return build_alert(signal, derived, card, AccountState(), previous, config, NOW)


def test_small_upsell_goes_to_the_csm_with_sales_informed() -> None:
    """18,000 on 100,000 ARR is 18 % < 20 %."""
    alert = alert_for(threshold_signal(0.9), facts(adoption=0.9, estimate=ExpansionEstimate(18_000, "upgrade", 2)))
    assert (alert.kind, alert.motion, alert.route_to, alert.owner, alert.informed) == ("expansion", "upsell", "csm", "dana", ["sam"])
    assert (alert.expansion_arr, alert.arr, alert.health) == (18_000, 100_000, None)


def test_large_upsell_goes_to_the_ae_with_the_csm_informed() -> None:
    """20,000 on 100,000 ARR is exactly 20 %: large."""
    alert = alert_for(threshold_signal(0.9), facts(adoption=0.9, estimate=ExpansionEstimate(20_000, "upgrade", 2)))
    assert (alert.motion, alert.route_to, alert.owner, alert.informed) == ("upsell", "ae", "sam", ["dana"])


def test_cross_sell_and_strategic_go_to_the_ae() -> None:
    interest = threshold_signal(0.9).model_copy(update={"type": SignalType.PREMIUM_FEATURE_INTEREST})
    cross = alert_for(interest, facts(adoption=0.9, estimate=ExpansionEstimate(1_000, "upgrade", 2)))
    strategic = alert_for(threshold_signal(0.9), facts(adoption=0.9, estimate=ExpansionEstimate(100_000, "upgrade", 2)))
    assert (cross.motion, cross.route_to) == ("cross_sell", "ae")
    assert (strategic.motion, strategic.route_to, strategic.owner) == ("strategic", "ae", "sam")


def test_the_default_owner_stands_in_when_the_account_names_none() -> None:
    config = parse_config({"scoring": {"routing": {"default_owner": "team@vendor.example"}}}).scoring
    nobody = AccountView("acme", "Acme", arr=100_000)
    alert = alert_for(threshold_signal(0.9), facts(adoption=0.9, account=nobody), config)
    assert (alert.route_to, alert.owner, alert.informed) == ("csm", "team@vendor.example", [])


@pytest.mark.parametrize(
    ("health", "reason"),
    [(Health(69.9, False, {}, None), "health 69.9 is below 70"), (Health(95, True, {}, None), "open billing issue")],
)
def test_unhealthy_accounts_get_a_retention_alert_to_the_csm_instead(health: Health, reason: str) -> None:
    alert = alert_for(threshold_signal(0.95), facts(adoption=0.95, health=health, estimate=ExpansionEstimate(50_000, "upgrade", 2)))
    assert (alert.kind, alert.route_to, alert.owner, alert.motion, alert.expansion_arr) == ("retention_risk", "csm", "dana", None, None)
    assert alert.reason is not None and reason in alert.reason


def test_health_at_the_threshold_is_not_gated() -> None:
    alert = alert_for(threshold_signal(0.95), facts(adoption=0.95, health=Health(70, False, {}, None)))
    assert (alert.kind, alert.health) == ("expansion", 70)


def test_alerts_name_three_drivers_and_what_changed() -> None:
    first = alert_for(threshold_signal(0.82), facts(adoption=0.82, nps=9, acv=0.5))
    assert first.changes == ["first score for this account"]
    assert [d.factor for d in first.drivers] == ["product_usage", "satisfaction", "expansion_potential"]
    previous = ReadinessModel(CONFIG).score(facts(adoption=0.55, nps=9)).breakdown()
    second = alert_for(threshold_signal(0.82), facts(adoption=0.82, nps=9, acv=0.5), previous=previous)
    # before: usage 10/15 → 20 and NPS 25: 45/55 → 82; after 30 + 25 + 10 = 100
    assert second.changes == [
        "score 82 → 100 (+18)",
        "product_usage +10.0 (api_calls at 82% of its limit)",
        "expansion_potential now known: ARR 100,000 is 0.50× the segment average",
    ]


def test_changes_report_a_tier_move() -> None:
    previous = {"score": 79, "tier": "short_term", "factors": []}
    card = ReadinessModel(CONFIG).score(facts(adoption=0.9))
    assert changes_since(previous, card)[:2] == ["score 79 → 100 (+21)", "tier short_term → immediate"]


def test_a_recent_downgrade_gates_expansion() -> None:
    change = SubscriptionChangedEvent(
        id="s1", account_id="acme", timestamp=NOW, type="subscription_changed", arr_before=100_000, arr_after=60_000, reason="downgrade"
    )
    state = record_event(AccountState(), change, CONFIG.health)
    assert state is not None
    derived = facts_for(ACME, record_signal(state, threshold_signal(0.95)), {}, CONFIG)
    alert = alert_for(threshold_signal(0.95), derived)
    assert (alert.kind, alert.reason) == ("retention_risk", "the account downgraded or churned recently")


@pytest.mark.parametrize(
    ("adoption", "nps", "min_tier", "raised"),
    [
        (0.3, 2, "medium_term", False),  # usage 5/15 of 30 = 10, NPS 2/15 of 25 = 3.3: 13.3 / 55 → 24, Low: not actionable by default
        (0.3, 2, "low", True),
        (0.5, None, "medium_term", True),  # 10/15 → 67: Short-term
        (0.5, None, "immediate", False),
    ],
)
def test_expansion_alerts_below_the_configured_tier_are_not_raised(adoption: float, nps: float | None, min_tier: str, raised: bool) -> None:
    config = parse_config({"scoring": {"routing": {"min_alert_tier": min_tier}}}).scoring
    assert actionable(alert_for(threshold_signal(adoption), facts(adoption=adoption, nps=nps), config), config) is raised


def test_retention_alerts_are_always_raised() -> None:
    config = parse_config({"scoring": {"routing": {"min_alert_tier": "immediate"}}}).scoring
    alert = alert_for(threshold_signal(0.3), facts(adoption=0.3, health=Health(20, False, {}, None)), config)
    assert alert.kind == "retention_risk" and actionable(alert, config)


def test_usage_growth_counts_as_growth_when_it_beats_seat_growth() -> None:
    """Seat growth 1/10 = 10 % (5 points); usage +35 % week over week is > 30 %: 8 of 8."""
    growth = threshold_signal(0.5).model_copy(update={"type": SignalType.USAGE_GROWTH, "growth": 0.35, "signal_id": "g1"})
    state = record_signal(record_signal(AccountState(), domain_signal("a@acme.com")), growth)
    derived = facts_for(ACME, state, {}, CONFIG)
    factor = next(f for f in ReadinessModel(CONFIG).score(derived).factors if f.factor == "growth")
    assert (derived.team_growth, factor.points) == (0.35, 20)
    assert factor.detail == "1 new user(s) from the customer's domains (10% of seats); usage +35% week over week"
