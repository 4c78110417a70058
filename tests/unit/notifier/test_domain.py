from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain.address_guard import UnsafeTarget, check_addresses
from services.notifier.domain.config import FatigueConfig, QuietHours, SlackRoutingConfig
from services.notifier.domain.fatigue import AccountAttention, Route, alert_level, decide, quarter_start, topic_key
from services.notifier.domain.messages import digest_text, plain_text, slack_message
from services.notifier.domain.quiet_hours import quiet_until
from services.notifier.domain.retry import retry_delay
from services.notifier.domain.routing import slack_channel_for
from shared.schemas import Alert, Driver, Signal, SignalType, Tier, UsageLine, UserRef

NOW = datetime(2026, 11, 10, tzinfo=UTC)


def alert(signal: Signal, name: str = "Acme Corp", tier: Tier = Tier.IMMEDIATE, **extra: object) -> Alert:
    fields: dict[str, object] = {
        "alert_id": "alert:1",
        "account_id": "acme",
        "account_name": name,
        "signal": signal,
        "score": 85,
        "tier": tier,
        "drivers": [Driver(factor="product_usage", points=25.5, detail="api_calls at 90% of its limit")],
        "usage": [UsageLine(metric="api_calls", value=9000, limit=10000, utilization=0.9)],
        "owner": "dana@vendor.example",
        "created_at": NOW,
    }
    return Alert(**{**fields, **extra})


def usage_signal(threshold: float = 0.9, metric: str = "api_calls") -> Signal:
    return Signal(
        signal_id=f"s-{metric}-{threshold}",
        type=SignalType.USAGE_THRESHOLD_CROSSED,
        account_id="acme",
        metric=metric,
        value=threshold * 10000,
        limit=10000,
        utilization=threshold,
        threshold=threshold,
        period="2026-11-01",
        event_id="e1",
        event_timestamp=NOW,
        emitted_at=NOW,
    )


def test_a_threshold_message_names_account_metric_usage_and_score() -> None:
    message = slack_message(alert(usage_signal()))
    text = message["text"]
    for expected in ("Acme Corp", "api_calls", "9000 / 10000", "90%", "85/100"):
        assert expected in text
    assert message["blocks"][0]["type"] == "header"
    fields = " ".join(field["text"] for field in message["blocks"][1]["fields"])
    assert "dana@vendor.example" in fields and "85/100" in fields and "9000 / 10000" in fields
    assert "product usage" in message["blocks"][2]["elements"][0]["text"]


def test_a_domain_user_message_names_the_user() -> None:
    signal = Signal(
        signal_id="s2",
        type=SignalType.NEW_DOMAIN_USER,
        account_id="acme",
        user=UserRef(id="u", email="ann@acme.com"),
        domain="acme.com",
        event_id="e2",
        event_timestamp=NOW,
        emitted_at=NOW,
    )
    assert "new user ann@acme.com from acme.com" in plain_text(alert(signal))


def test_messages_stay_within_slack_limits() -> None:
    message = slack_message(alert(usage_signal(), name="A" * 5000))
    assert len(message["blocks"]) <= 50
    assert len(message["blocks"][0]["text"]["text"]) <= 150
    for field in message["blocks"][1]["fields"]:
        assert len(field["text"]) <= 2000


@pytest.mark.parametrize(("attempts", "jitter", "expected"), [(0, 0.0, 0.5), (0, 1.0, 1.0), (3, 1.0, 8.0), (20, 1.0, 300.0)])
def test_backoff_grows_exponentially_up_to_a_cap(attempts: int, jitter: float, expected: float) -> None:
    assert retry_delay(attempts, None, jitter) == pytest.approx(expected)


def test_retry_after_wins_when_longer() -> None:
    assert retry_delay(0, 30, 0.5) == 30
    assert retry_delay(5, 1, 1.0) == 32


def growth_signal() -> Signal:
    return Signal(
        signal_id="g1",
        type=SignalType.USAGE_GROWTH,
        account_id="acme",
        metric="api_calls",
        growth=0.6,
        event_id="e3",
        event_timestamp=NOW,
        emitted_at=NOW,
    )


# ----------------------------------------------------------------------------- Block Kit


def test_block_kit_carries_every_field_the_issue_names_and_the_buttons() -> None:
    message = slack_message(
        alert(usage_signal(), expansion_arr=24000, route_to="ae"), crm_account_url="https://crm.example/companies/{account_id}"
    )
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]
    fields = [field["text"] for field in message["blocks"][1]["fields"]]
    titles = [text.split("\n", 1)[0] for text in fields]
    assert titles == ["*Account*", "*Owner (AE)*", "*Signal*", "*Usage vs limit*", "*Score and tier*", "*Estimated expansion ARR*"]
    assert "$24,000" in fields[5] and "Immediate" in fields[4]
    buttons = {button["action_id"]: button for button in message["blocks"][3]["elements"]}
    assert buttons["open_crm"]["url"] == "https://crm.example/companies/acme"
    assert buttons["snooze"]["value"] == buttons["done"]["value"] == "alert:1"
    assert "Estimated expansion ARR: $24,000" in message["text"]


def test_without_a_crm_url_there_is_no_crm_button_and_unknown_money_says_so() -> None:
    message = slack_message(alert(usage_signal()))
    assert [button["action_id"] for button in message["blocks"][3]["elements"]] == ["snooze", "done"]
    assert "unknown" in message["blocks"][1]["fields"][5]["text"]


def test_a_retention_alert_says_so_and_shows_unknown_health() -> None:
    message = slack_message(alert(usage_signal(), kind="retention_risk", reason="billing issue open"))
    assert message["blocks"][0]["text"]["text"].startswith("Retention risk")
    assert any(field["text"] == "*Health*\nunknown" for field in message["blocks"][1]["fields"])
    assert message["text"].startswith("Retention risk for Acme Corp")


def test_long_drivers_and_changes_are_clipped_to_slacks_section_limit() -> None:
    drivers = [Driver(factor="product_usage", points=1, detail="x" * 2500) for _ in range(5)]
    message = slack_message(alert(usage_signal(), drivers=drivers, changes=["y" * 4000]))
    assert len(message["blocks"][2]["elements"][0]["text"]) <= 3000
    assert len(message["blocks"]) <= 50 and len(message["blocks"][1]["fields"]) <= 10


# ----------------------------------------------------------------------------- routing

ROUTING = SlackRoutingConfig(
    default_channel="default",
    by_owner={"dana@vendor.example": "dana"},
    teams={"enterprise": ["erin@vendor.example"]},
    by_team={"enterprise": "ent"},
    by_tier={"immediate": "hot"},
)


@pytest.mark.parametrize(
    ("owner", "slack_channel", "tier", "configured", "expected"),
    [
        ("dana@vendor.example", "own", Tier.LOW, {"own", "dana", "default"}, "own"),
        ("dana@vendor.example", None, Tier.IMMEDIATE, {"dana", "hot", "default"}, "dana"),
        ("erin@vendor.example", None, Tier.IMMEDIATE, {"ent", "hot", "default"}, "ent"),
        ("zoe@vendor.example", None, Tier.IMMEDIATE, {"hot", "default"}, "hot"),
        ("zoe@vendor.example", None, Tier.LOW, {"hot", "default"}, "default"),
        ("dana@vendor.example", "typo", Tier.LOW, {"default"}, "default"),
    ],
)
def test_slack_routing_prefers_alert_then_owner_team_tier_default(
    owner: str, slack_channel: str | None, tier: Tier, configured: set[str], expected: str
) -> None:
    routed = Alert.model_validate({**alert(usage_signal(), tier=tier).model_dump(), "owner": owner, "slack_channel": slack_channel})
    assert slack_channel_for(routed, ROUTING, configured) == expected


# ----------------------------------------------------------------------------- fatigue

FATIGUE = FatigueConfig()


def test_a_first_threshold_crossing_pings() -> None:
    assert decide(alert(usage_signal(0.8)), AccountAttention(), FATIGUE, NOW).route == Route.PING


def test_an_open_alert_is_not_repeated_at_the_same_or_a_lower_level() -> None:
    open_at_95 = AccountAttention(open_levels={topic_key(alert(usage_signal(0.95))): 0.95})
    assert decide(alert(usage_signal(0.95)), open_at_95, FATIGUE, NOW).route == Route.DROP
    assert decide(alert(usage_signal(0.8)), open_at_95, FATIGUE, NOW).route == Route.DROP


def test_a_higher_level_is_new_because_urgency_rose() -> None:
    open_at_80 = AccountAttention(open_levels={topic_key(alert(usage_signal(0.8))): 0.8})
    assert decide(alert(usage_signal(0.95)), open_at_80, FATIGUE, NOW).route == Route.PING


def test_another_metric_is_another_topic() -> None:
    open_api = AccountAttention(open_levels={topic_key(alert(usage_signal(0.95))): 0.95})
    assert decide(alert(usage_signal(0.8, metric="storage_gb")), open_api, FATIGUE, NOW).route == Route.PING
    assert alert_level(alert(usage_signal(0.8))) == 0.8


def test_after_the_quarters_outreach_cap_signals_go_to_the_digest() -> None:
    assert decide(alert(usage_signal()), AccountAttention(outreaches_this_quarter=1), FATIGUE, NOW).route == Route.PING
    capped = decide(alert(usage_signal()), AccountAttention(outreaches_this_quarter=2), FATIGUE, NOW)
    assert capped.route == Route.DIGEST and "2 outreaches" in capped.reason
    assert decide(alert(usage_signal()), AccountAttention(outreaches_this_quarter=2), FatigueConfig(outreach_per_quarter=3), NOW).route == (
        Route.PING
    )


def test_snoozed_accounts_wait_for_the_digest_until_the_snooze_ends() -> None:
    snoozed = AccountAttention(snoozed_until=NOW + timedelta(days=1))
    assert decide(alert(usage_signal()), snoozed, FATIGUE, NOW).route == Route.DIGEST
    assert decide(alert(usage_signal()), snoozed, FATIGUE, NOW + timedelta(days=2)).route == Route.PING


def test_opted_out_accounts_get_nothing() -> None:
    assert decide(alert(usage_signal()), AccountAttention(opted_out=True), FATIGUE, NOW).route == Route.DROP


@pytest.mark.parametrize(
    ("tier", "expected"),
    [(Tier.IMMEDIATE, Route.PING), (Tier.SHORT_TERM, Route.PING), (Tier.MEDIUM_TERM, Route.DIGEST), (Tier.LOW, Route.DIGEST)],
)
def test_low_urgency_signals_of_medium_and_low_accounts_go_to_the_digest(tier: Tier, expected: Route) -> None:
    assert decide(alert(growth_signal(), tier=tier), AccountAttention(), FATIGUE, NOW).route == expected
    # threshold crossings ping at every tier
    assert decide(alert(usage_signal(), tier=tier), AccountAttention(), FATIGUE, NOW).route == Route.PING


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        (datetime(2026, 3, 31, 23, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        (datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)),
    ],
)
def test_quarters_start_in_january_april_july_october(now: datetime, start: datetime) -> None:
    assert quarter_start(now) == start


def test_the_digest_groups_by_account_strongest_first() -> None:
    weak = Alert.model_validate({**alert(growth_signal(), name="Beta").model_dump(), "account_id": "beta", "score": 41})
    strong = alert(usage_signal())
    text = digest_text([weak, strong, alert(growth_signal())])
    assert text.startswith("Expansion digest: 3 signals")
    assert text.index("Acme Corp") < text.index("Beta")
    assert text.count("Acme Corp") == 1 and "usage growth" in text


# ----------------------------------------------------------------------------- address guard


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "0.0.0.0"],
)
def test_private_loopback_and_link_local_targets_are_refused(address: str) -> None:
    with pytest.raises(UnsafeTarget, match="WEBHOOK_ALLOW_PRIVATE"):
        check_addresses("hooks.example", [address], allow_private=False)
    check_addresses("hooks.example", [address], allow_private=True)


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    check_addresses("hooks.example", ["93.184.216.34", "2606:2800:220:1::1"], allow_private=False)
    with pytest.raises(UnsafeTarget):
        check_addresses("hooks.example", ["93.184.216.34", "10.0.0.1"], allow_private=False)
    with pytest.raises(UnsafeTarget, match="does not resolve"):
        check_addresses("hooks.example", [], allow_private=True)


def test_another_new_user_or_billing_period_is_not_a_repeat() -> None:
    first = alert(usage_signal(0.95))
    next_period = Alert.model_validate({**first.model_dump(), "signal": {**first.signal.model_dump(), "period": "2026-12-01"}})
    assert topic_key(first) != topic_key(next_period)
    user = Signal(
        signal_id="u",
        type=SignalType.NEW_DOMAIN_USER,
        account_id="acme",
        user=UserRef(id="u1", email="ann@acme.com"),
        domain="acme.com",
        event_id="e",
        event_timestamp=NOW,
        emitted_at=NOW,
    )
    other_user = user.model_copy(update={"user": UserRef(id="u2", email="bob@acme.com")})
    assert topic_key(alert(user)) != topic_key(alert(other_user))


# ----------------------------------------------------------------------------- quiet hours


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 10, 21, 30, tzinfo=UTC), datetime(2026, 11, 11, 7, tzinfo=UTC)),  # 22:30 Berlin
        (datetime(2026, 11, 11, 5, 0, tzinfo=UTC), datetime(2026, 11, 11, 7, tzinfo=UTC)),  # 06:00 Berlin
        (datetime(2026, 11, 11, 7, 0, tzinfo=UTC), None),  # 08:00 Berlin: the window has ended
        (datetime(2026, 11, 11, 12, 0, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_span_midnight_in_the_channels_time_zone(now: datetime, expected: datetime | None) -> None:
    window = QuietHours(start="22:00", end="08:00", timezone="Europe/Berlin")
    assert quiet_until(now, window) == expected


def test_a_daytime_quiet_window_and_bad_windows() -> None:
    lunch = QuietHours(start="12:00", end="13:00")
    assert quiet_until(datetime(2026, 11, 10, 12, 30, tzinfo=UTC), lunch) == datetime(2026, 11, 10, 13, tzinfo=UTC)
    assert quiet_until(datetime(2026, 11, 10, 13, 0, tzinfo=UTC), lunch) is None
    with pytest.raises(ValueError, match="unknown time zone"):
        QuietHours(start="22:00", end="08:00", timezone="Mars/Olympus")
    with pytest.raises(ValueError):
        QuietHours(start="25:00", end="08:00")


def test_motion_arr_informed_and_the_models_action_are_shown() -> None:
    message = slack_message(
        alert(usage_signal(), motion="cross_sell", arr=50000, informed=["csm@vendor.example"], action="Schedule an expansion call")
    )
    fields = [field["text"] for field in message["blocks"][1]["fields"]]
    assert "*Motion and current ARR*\ncross-sell · $50,000" in fields
    assert any("cc csm@vendor.example" in text for text in fields)
    assert any("Schedule an expansion call" in text for text in fields)
