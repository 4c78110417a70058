from datetime import UTC, datetime

import pytest

from services.scoring.domain import AccountView, ScoreInputs, build_alert, compute_score, record_signal, tier_for, top_drivers
from shared.config import ScoreWeights, ScoringConfig, TierBounds
from shared.schemas import Signal, SignalType, Tier, UserRef

CONFIG = ScoringConfig()
NOW = datetime(2026, 11, 10, tzinfo=UTC)


def threshold_signal(utilization: float, metric: str = "api_calls", limit: float = 100) -> Signal:
    return Signal(
        signal_id=f"s-{metric}-{utilization}",
        type=SignalType.USAGE_THRESHOLD_CROSSED,
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


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (100, Tier.IMMEDIATE),
        (80, Tier.IMMEDIATE),
        (79, Tier.SHORT_TERM),
        (60, Tier.SHORT_TERM),
        (59, Tier.MEDIUM_TERM),
        (40, Tier.MEDIUM_TERM),
        (39, Tier.LOW),
        (0, Tier.LOW),
    ],
)
def test_tiers_follow_the_seeds_bands(score: int, tier: Tier) -> None:
    assert tier_for(score, CONFIG) is tier


def test_missing_parts_spread_their_weight_instead_of_scoring_zero() -> None:
    card = compute_score(record_signal(ScoreInputs(), threshold_signal(0.82)), CONFIG)
    # only product usage has data: 0.7 of its 30 points -> 21 / 30 known points -> 70
    assert card.score == 70
    assert card.tier is Tier.SHORT_TERM
    assert set(card.missing) == {"satisfaction", "growth", "relationship", "expansion_potential"}


def test_usage_and_growth_combine_over_the_known_weight() -> None:
    inputs = record_signal(record_signal(ScoreInputs(), threshold_signal(0.96)), domain_signal("ann@acme.com"))
    card = compute_score(inputs, CONFIG)
    # usage 30 * 1.0 + growth 20 * 0.5 = 40 of 50 known points -> 80
    assert card.score == 80
    assert card.tier is Tier.IMMEDIATE
    assert [d.factor for d in top_drivers(card)] == ["product_usage", "growth"]


def test_the_latest_crossing_per_metric_and_each_user_once_are_kept() -> None:
    inputs = ScoreInputs()
    for signal in (threshold_signal(0.8), threshold_signal(0.95), domain_signal("a@acme.com"), domain_signal("a@acme.com")):
        inputs = record_signal(inputs, signal)
    assert inputs.usage["api_calls"].utilization == 0.95
    assert inputs.domain_users == ["a@acme.com"]


def test_weights_come_from_config() -> None:
    config = ScoringConfig(
        weights=ScoreWeights(product_usage=50, satisfaction=20, growth=10, relationship=10, expansion_potential=10),
        tiers=TierBounds(immediate=90, short_term=70, medium_term=50),
    )
    inputs = record_signal(record_signal(ScoreInputs(), threshold_signal(0.96)), domain_signal("ann@acme.com"))
    card = compute_score(inputs, config)
    assert card.score == round(100 * (50 + 5) / 60)
    assert card.tier is Tier.IMMEDIATE


def test_an_alert_carries_score_drivers_usage_and_owner() -> None:
    signal = threshold_signal(0.9)
    inputs = record_signal(ScoreInputs(), signal)
    alert = build_alert(
        signal, AccountView("acme", "Acme Corp", "dana@vendor.example", "#acme"), compute_score(inputs, CONFIG), inputs, NOW
    )
    assert alert.alert_id == f"alert:{signal.signal_id}"
    assert (alert.account_name, alert.owner, alert.slack_channel, alert.route_to) == ("Acme Corp", "dana@vendor.example", "#acme", "csm")
    assert alert.score == 85 and alert.drivers[0].factor == "product_usage"
    assert [(line.metric, line.value, line.limit) for line in alert.usage] == [("api_calls", 90, 100)]
