import uuid
from datetime import UTC, date, datetime, timedelta

import msgspec
import orjson
import pytest

from services.signals.domain.apply import apply_account_update, apply_event
from services.signals.domain.config import Rules
from services.signals.domain.dedupe import RecentIds, id_hash
from services.signals.domain.email_domains import matching_account_domain
from services.signals.domain.periods import billing_period
from services.signals.domain.state import AccountState, dump_state, encode_state, load_state
from shared.schemas import AccountUpdate, SignalType
from shared.wire import (
    FeatureUsedEvent,
    GaugeEvent,
    IntegrationConnectedEvent,
    UsageEvent,
    UserAddedEvent,
    UserRemovedEvent,
)
from shared.wire import WireUserRef as UserRef

RULES = Rules(thresholds=(0.8, 0.9, 0.95), recent_event_ids=100)
T0 = datetime(2026, 11, 10, 12, tzinfo=UTC)


def account(limits: dict[str, float] | None = None, domains: list[str] | None = None, anchor: date | None = None) -> AccountState:
    state = AccountState(account_id="acme")
    apply_account_update(
        state,
        AccountUpdate(
            account_id="acme",
            name="Acme",
            limits=limits or {"api_calls": 100},
            domains=domains or ["acme.com"],
            billing_anchor=anchor,
            updated_at=T0,
        ),
        RULES,
    )
    return state


_ids = iter(range(10**9))


def usage(quantity: float, at: datetime = T0, metric: str = "api_calls", event_id: str | None = None) -> UsageEvent:
    return UsageEvent(id=event_id or f"e{next(_ids)}", account_id="acme", timestamp=at, metric=metric, quantity=quantity)


def user(email: str, event_id: str | None = None) -> UserAddedEvent:
    return UserAddedEvent(id=event_id or f"u{next(_ids)}", account_id="acme", timestamp=T0, user=UserRef(id=email, email=email))


def thresholds(signals) -> list[float]:
    return [s.threshold for s in signals]


def test_below_the_first_threshold_emits_nothing() -> None:
    state = account()
    assert apply_event(state, usage(79), RULES) == []
    assert state.usage["api_calls"].used == 79


def test_each_threshold_fires_once_per_period() -> None:
    state = account()
    assert thresholds(apply_event(state, usage(80), RULES)) == [0.8]
    assert apply_event(state, usage(5), RULES) == []
    assert thresholds(apply_event(state, usage(5), RULES)) == [0.9]
    assert thresholds(apply_event(state, usage(5), RULES)) == [0.95]
    assert apply_event(state, usage(50), RULES) == []


def test_one_event_crossing_several_thresholds_emits_only_the_highest() -> None:
    state = account()
    signals = apply_event(state, usage(96), RULES)
    assert thresholds(signals) == [0.95]
    assert state.usage["api_calls"].fired == [0.8, 0.9, 0.95]
    signal = signals[0]
    assert signal.type == SignalType.USAGE_THRESHOLD_CROSSED
    assert (signal.metric, signal.value, signal.limit, signal.utilization) == ("api_calls", 96, 100, 0.96)
    assert signal.period == "2026-11-01"


def test_signal_ids_are_stable_for_the_same_crossing() -> None:
    first, second = account(), account()
    assert (
        apply_event(first, usage(85, event_id="x"), RULES)[0].signal_id == apply_event(second, usage(85, event_id="x"), RULES)[0].signal_id
    )


def test_a_replayed_event_id_is_ignored() -> None:
    state = account()
    apply_event(state, usage(50, event_id="same"), RULES)
    assert apply_event(state, usage(50, event_id="same"), RULES) == []
    assert state.usage["api_calls"].used == 50


def test_the_next_period_re_arms_thresholds() -> None:
    state = account()
    assert thresholds(apply_event(state, usage(85), RULES)) == [0.8]
    december = datetime(2026, 12, 2, tzinfo=UTC)
    assert apply_event(state, usage(10, at=december), RULES) == []
    assert state.usage["api_calls"].used == 10
    signals = apply_event(state, usage(75, at=december), RULES)
    # 85 % in November and 85 % in December: the second period in a row is also sustained-high
    assert [(s.type, s.threshold, s.period) for s in signals] == [
        (SignalType.USAGE_THRESHOLD_CROSSED, 0.8, "2026-12-01"),
        (SignalType.USAGE_SUSTAINED_HIGH, 0.8, "2026-12-01"),
    ]


def test_a_late_event_for_a_closed_period_fires_no_stale_alert() -> None:
    state = account()
    apply_event(state, usage(10, at=datetime(2026, 12, 2, tzinfo=UTC)), RULES)
    assert apply_event(state, usage(95, at=T0), RULES) == []


def test_raising_the_limit_re_arms_and_lowering_it_emits() -> None:
    state = account()
    assert thresholds(apply_event(state, usage(85), RULES)) == [0.8]
    raised = AccountUpdate(account_id="acme", name="Acme", limits={"api_calls": 200}, domains=["acme.com"], updated_at=T0)
    assert apply_account_update(state, raised, RULES) == []
    assert state.usage["api_calls"].fired == []
    again = apply_event(state, usage(75), RULES)
    assert thresholds(again) == [0.8]
    lowered = AccountUpdate(account_id="acme", name="Acme", limits={"api_calls": 165}, domains=["acme.com"], updated_at=T0)
    signals = apply_account_update(state, lowered, RULES)
    assert thresholds(signals) == [0.95]
    assert signals[0].signal_id != again[0].signal_id


def test_usage_before_limits_are_known_signals_when_they_arrive() -> None:
    state = AccountState(account_id="acme")
    assert apply_event(state, usage(90), RULES) == []
    update = AccountUpdate(account_id="acme", name="Acme", limits={"api_calls": 100}, updated_at=T0)
    assert thresholds(apply_account_update(state, update, RULES)) == [0.9]


def test_gauges_compare_the_level_not_a_sum() -> None:
    state = account(limits={"storage_gb": 10})
    gauge = GaugeEvent(id="g1", account_id="acme", timestamp=T0, metric="storage_gb", value=8.5)
    assert thresholds(apply_event(state, gauge, RULES)) == [0.8]
    gauge2 = GaugeEvent(id="g2", account_id="acme", timestamp=T0, metric="storage_gb", value=8.6)
    assert apply_event(state, gauge2, RULES) == []
    assert state.usage["storage_gb"].used == 8.6


def test_metrics_without_a_limit_never_signal() -> None:
    state = account()
    assert apply_event(state, usage(10**6, metric="emails_sent"), RULES) == []


def test_first_user_from_each_customer_domain_signals_once() -> None:
    state = account(domains=["acme.com"])
    first = apply_event(state, user("ann@acme.com"), RULES)
    assert [(s.type, s.domain, s.user.email) for s in first] == [(SignalType.NEW_DOMAIN_USER, "acme.com", "ann@acme.com")]
    assert apply_event(state, user("bob@acme.com"), RULES) == []
    sub = apply_event(state, user("cy@eu.acme.com"), RULES)
    assert [s.domain for s in sub] == ["eu.acme.com"]


@pytest.mark.parametrize("email", ["someone@gmail.com", "x@mailinator.com", "y@notacme.com", "z@acme.com.evil.io"])
def test_other_and_personal_domains_never_count(email: str) -> None:
    state = account(domains=["acme.com"])
    assert apply_event(state, user(email), RULES) == []


def test_an_account_declaring_a_free_mail_domain_gets_no_domain_signals() -> None:
    assert matching_account_domain("gmail.com", ["gmail.com"]) is None


@pytest.mark.parametrize(
    ("at", "anchor", "start", "end"),
    [
        (datetime(2026, 11, 10, tzinfo=UTC), None, "2026-11-01", "2026-12-01"),
        (datetime(2026, 11, 10, tzinfo=UTC), date(2025, 3, 15), "2026-10-15", "2026-11-15"),
        (datetime(2026, 11, 15, tzinfo=UTC), date(2025, 3, 15), "2026-11-15", "2026-12-15"),
        (datetime(2026, 3, 1, tzinfo=UTC), date(2025, 1, 31), "2026-02-28", "2026-03-31"),
        (datetime(2026, 1, 5, tzinfo=UTC), date(2025, 1, 10), "2025-12-10", "2026-01-10"),
    ],
)
def test_billing_periods_follow_the_anchor_day(at: datetime, anchor: date | None, start: str, end: str) -> None:
    period = billing_period(at, anchor)
    assert (period.start.date().isoformat(), period.end.date().isoformat()) == (start, end)
    assert period.start <= at < period.end


def test_remembered_ids_are_bounded() -> None:
    state = account()
    rules = Rules(thresholds=(0.8,), recent_event_ids=3)
    for index in range(5):
        apply_event(state, usage(1, event_id=f"id{index}"), rules)
    assert len(state.recent_event_ids) == 3
    assert [name for name in ("id0", "id1", "id2", "id3", "id4") if name in state.recent_event_ids] == ["id2", "id3", "id4"]
    stored = RecentIds.from_stored(dump_state(state)["recent_event_ids"])  # one base64 text, oldest first
    assert stored.oldest_first() == [id_hash("id2"), id_hash("id3"), id_hash("id4")]
    assert apply_event(state, usage(1, event_id="id4"), rules) == [] and state.usage["api_calls"].used == 5  # a repeat
    apply_event(state, usage(1, event_id="id1"), rules)  # forgotten, so counted again
    assert state.usage["api_calls"].used == 6
    assert [name for name in ("id1", "id2", "id3", "id4") if name in state.recent_event_ids] == ["id1", "id3", "id4"]


def test_a_smaller_window_than_the_state_was_written_with_keeps_the_newest() -> None:
    state = account()
    for index in range(6):
        apply_event(state, usage(1, event_id=f"id{index}"), Rules(recent_event_ids=6))
    apply_event(state, usage(1, event_id="new"), Rules(recent_event_ids=2))
    assert state.recent_event_ids.oldest_first() == [id_hash("id5"), id_hash("new")]
    apply_event(state, usage(1, event_id="none kept"), Rules(recent_event_ids=0))
    assert len(state.recent_event_ids) == 0


@pytest.mark.parametrize("bits", [10, 12])
def test_the_window_drops_a_new_event_at_the_rate_its_hash_width_says(bits: int) -> None:
    """A new id whose hash one of the window's w ids shares is dropped: probability w / 2**bits. Counted here on
    hashes cut to a few bits, where it is large, on the window itself; the full 64 bits make it w / 2**64."""
    window, events, mask = 48, 60_000, (1 << bits) - 1
    recent = RecentIds()
    dropped = 0
    for index in range(events):
        hashed = id_hash(f"event-{bits}-{index}") & mask
        if hashed in recent.seen:
            dropped += 1
        else:
            recent.add(hashed, window)
    expected = events * window / 2**bits
    assert abs(dropped - expected) < 5 * expected**0.5, (dropped, expected)  # within 5 sigma of the formula
    assert 48 / 2**64 < 3e-18  # the default window's rate an event, as the config documents it


def test_a_state_with_a_full_window_fits_in_a_kilobyte_per_metric() -> None:
    """The design's bound: 1 KB per (account, metric), with every id of the window (UUIDs, say) remembered."""
    rules = Rules()
    state = account({"api_calls": 1_000_000}, domains=["acme.com"])
    state.account_id = "acct-" + "7" * 31  # a long id
    for index in range(rules.recent_event_ids * 3):
        apply_event(state, usage(5, event_id=str(uuid.UUID(int=index))), rules)
    state.source_offsets = {"radar-prod-usage-events[11]": 123_456_789, "radar-prod-account-updates[11]": 5_000}
    assert len(state.recent_event_ids) == rules.recent_event_ids == 48
    assert len(encode_state(state)) <= 1024, encode_state(state)


# ----------------------------------------------------------------------------- seats, teams, features, growth, history

SEATS = Rules(thresholds=(0.8, 0.9, 0.95), recent_event_ids=100, seat_thresholds=(0.5, 0.8))


def member(user_id: str, email: str | None = None, team: str | None = None, at: datetime = T0) -> UserAddedEvent:
    ref = UserRef(id=user_id, email=email or f"{user_id}@gmail.com", team=team)
    return UserAddedEvent(id=f"add-{user_id}-{next(_ids)}", account_id="acme", timestamp=at, user=ref)


def removed(user_id: str, at: datetime = T0) -> UserRemovedEvent:
    ref = UserRef(id=user_id, email=f"{user_id}@gmail.com")
    return UserRemovedEvent(id=f"rm-{user_id}-{next(_ids)}", account_id="acme", timestamp=at, user=ref)


def kinds(signals) -> list[str]:
    return [s.type.value for s in signals]


def test_seats_count_active_users_against_the_seat_limit() -> None:
    state = account(limits={"seats": 4})
    assert apply_event(state, member("a"), SEATS) == []
    signals = apply_event(state, member("b"), SEATS)
    assert [(s.type, s.threshold, s.value, s.limit) for s in signals] == [(SignalType.SEAT_THRESHOLD_CROSSED, 0.5, 2, 4)]
    assert apply_event(state, member("b"), SEATS) == []  # the same user again is no new seat
    assert apply_event(state, removed("a"), SEATS) == []
    assert state.usage["seats"].used == 1
    assert apply_event(state, member("c"), SEATS) == []  # back to 2 of 4: 50 % was spent this period
    assert apply_event(state, member("d"), SEATS) == []  # 75 %: below 80 %
    assert state.usage["seats"].used == 3
    crossed = apply_event(state, member("e"), SEATS)
    assert [(s.type, s.threshold) for s in crossed] == [(SignalType.SEAT_THRESHOLD_CROSSED, 0.8)]


def test_seats_carry_over_a_period_roll_and_re_arm() -> None:
    state = account(limits={"seats": 4})
    apply_event(state, member("a"), SEATS)
    assert kinds(apply_event(state, member("b"), SEATS)) == ["seat_threshold_crossed"]
    december = datetime(2026, 12, 3, tzinfo=UTC)
    assert apply_event(state, usage(1, at=december), SEATS) == []
    assert state.usage["seats"].used == 2 and state.usage["seats"].fired == []
    signals = apply_event(state, member("c", at=december), SEATS)
    assert [(s.type, s.threshold, s.period) for s in signals] == [(SignalType.SEAT_THRESHOLD_CROSSED, 0.5, "2026-12-01")]


def test_raising_the_seat_limit_re_arms_and_lowering_it_emits() -> None:
    state = account(limits={"seats": 4})
    for user_id in "ab":
        apply_event(state, member(user_id), SEATS)
    lowered = AccountUpdate(account_id="acme", name="Acme", limits={"seats": 2}, updated_at=T0)
    signals = apply_account_update(state, lowered, SEATS)
    assert [(s.type, s.threshold, s.limit) for s in signals] == [(SignalType.SEAT_THRESHOLD_CROSSED, 0.8, 2)]
    raised = AccountUpdate(account_id="acme", name="Acme", limits={"seats": 10}, updated_at=T0)
    assert apply_account_update(state, raised, SEATS) == []
    assert state.usage["seats"].fired == []


def test_usage_sustained_high_needs_consecutive_periods() -> None:
    state = account()
    apply_event(state, usage(85, at=datetime(2026, 9, 10, tzinfo=UTC)), RULES)
    apply_event(state, usage(10, at=datetime(2026, 10, 10, tzinfo=UTC)), RULES)  # October low: the run breaks
    november = apply_event(state, usage(90, at=T0), RULES)
    assert kinds(november) == ["usage_threshold_crossed"]
    december = apply_event(state, usage(81, at=datetime(2026, 12, 5, tzinfo=UTC)), RULES)
    assert kinds(december) == ["usage_threshold_crossed", "usage_sustained_high"]
    sustained = december[1]
    assert (sustained.metric, sustained.value, sustained.previous_value, sustained.period) == ("api_calls", 81, 90, "2026-12-01")
    assert apply_event(state, usage(1, at=datetime(2026, 12, 6, tzinfo=UTC)), RULES) == []  # once per period


def test_a_late_event_corrects_history_that_sustained_high_reads() -> None:
    state = account()
    apply_event(state, usage(70, at=T0), RULES)
    apply_event(state, usage(1, at=datetime(2026, 12, 2, tzinfo=UTC)), RULES)
    assert apply_event(state, usage(15, at=T0), RULES) == []  # November closed: 85 % now, but no stale alert
    assert state.history["2026-11-01"]["api_calls"].used == 85
    december = apply_event(state, usage(80, at=datetime(2026, 12, 9, tzinfo=UTC)), RULES)
    assert kinds(december) == ["usage_threshold_crossed", "usage_sustained_high"]


def test_out_of_order_events_within_the_period_all_count() -> None:
    state = account()
    apply_event(state, usage(40, at=datetime(2026, 11, 20, tzinfo=UTC)), RULES)
    signals = apply_event(state, usage(45, at=datetime(2026, 11, 3, tzinfo=UTC)), RULES)
    assert thresholds(signals) == [0.8]
    assert state.period == "2026-11-01"


def test_an_older_gauge_level_arriving_late_does_not_replace_a_newer_one() -> None:
    state = account(limits={"storage_gb": 10})
    newer = GaugeEvent(id="g1", account_id="acme", timestamp=T0, metric="storage_gb", value=5)
    older = GaugeEvent(id="g2", account_id="acme", timestamp=T0 - timedelta(hours=1), metric="storage_gb", value=9)
    apply_event(state, newer, RULES)
    assert apply_event(state, older, RULES) == []
    assert state.usage["storage_gb"].used == 5


def test_late_user_events_change_state_but_fire_nothing() -> None:
    state = account(limits={"seats": 2})
    apply_event(state, usage(1, at=datetime(2026, 12, 2, tzinfo=UTC)), SEATS)
    assert apply_event(state, member("a", email="ann@acme.com", team="Sales"), SEATS) == []
    assert apply_event(state, member("b", email="bo@eu.acme.com", team="Ops"), SEATS) == []
    assert state.seen_domains == ["acme.com", "eu.acme.com"] and state.teams == ["sales", "ops"]
    assert state.usage["seats"].used == 2


def test_new_team_adoption_fires_for_each_team_after_the_first() -> None:
    state = account()
    assert apply_event(state, member("a", team="Engineering"), RULES) == []
    assert apply_event(state, member("b", team="engineering "), RULES) == []
    signals = apply_event(state, member("c", team="Marketing"), RULES)
    assert [(s.type, s.team, s.user.id, s.signal_id) for s in signals] == [
        (SignalType.NEW_TEAM_ADOPTION, "Marketing", "c", "acme:new_team_adoption:marketing")
    ]
    assert apply_event(state, member("d", team="MARKETING"), RULES) == []
    assert apply_event(state, member("e"), RULES) == []  # no team given


def feature(name: str, at: datetime, gated: bool = True) -> FeatureUsedEvent:
    return FeatureUsedEvent(id=f"f{next(_ids)}", account_id="acme", timestamp=at, feature=name, gated=gated)


def test_premium_feature_interest_after_n_tries_in_m_days() -> None:
    rules = Rules(premium_feature_tries=3, premium_feature_window=timedelta(days=7))
    state = account()
    assert apply_event(state, feature("sso", T0 - timedelta(days=9)), rules) == []
    assert apply_event(state, feature("sso", T0 - timedelta(days=2)), rules) == []
    assert apply_event(state, feature("sso", T0), rules) == []  # the first try fell out of the 7 days
    assert apply_event(state, feature("reports", T0, gated=False), rules) == []
    signals = apply_event(state, feature("sso", T0 + timedelta(days=1)), rules)
    assert [(s.type, s.feature, s.tries, s.period) for s in signals] == [(SignalType.PREMIUM_FEATURE_INTEREST, "sso", 3, "2026-11-01")]
    assert apply_event(state, feature("sso", T0 + timedelta(days=2)), rules) == []  # once per feature per period
    assert set(state.features) == {"sso", "reports"}


def test_premium_feature_tries_out_of_order_count_within_the_window() -> None:
    rules = Rules(premium_feature_tries=2, premium_feature_window=timedelta(days=7))
    state = account()
    apply_event(state, feature("audit_log", T0 + timedelta(days=3)), rules)
    assert kinds(apply_event(state, feature("audit_log", T0), rules)) == ["premium_feature_interest"]


GROWTH = Rules(growth_rate=0.5, growth_min_previous_week=100)
MONDAY = datetime(2026, 11, 2, 9, tzinfo=UTC)


def test_usage_growth_week_over_week_above_the_rate() -> None:
    state = account(limits={"api_calls": 10**9})
    apply_event(state, usage(100, at=MONDAY), GROWTH)
    next_week = MONDAY + timedelta(days=7)
    assert apply_event(state, usage(150, at=next_week), GROWTH) == []  # +50 % is not above +50 %
    signals = apply_event(state, usage(1, at=next_week + timedelta(days=1)), GROWTH)
    assert [(s.type, s.metric, s.value, s.previous_value, s.growth, s.period) for s in signals] == [
        (SignalType.USAGE_GROWTH, "api_calls", 151, 100, 0.51, "2026-11-09")
    ]
    assert apply_event(state, usage(500, at=next_week + timedelta(days=2)), GROWTH) == []  # once per metric and week


def test_usage_growth_needs_a_previous_week_worth_comparing() -> None:
    state = account(limits={"api_calls": 10**9})
    apply_event(state, usage(10, at=MONDAY), GROWTH)
    assert apply_event(state, usage(1000, at=MONDAY + timedelta(days=7)), GROWTH) == []


def test_a_late_event_updates_a_past_week_without_a_growth_signal() -> None:
    state = account(limits={"api_calls": 10**9})
    apply_event(state, usage(100, at=MONDAY), GROWTH)
    apply_event(state, usage(10, at=MONDAY + timedelta(days=7)), GROWTH)
    assert apply_event(state, usage(500, at=MONDAY + timedelta(days=1)), GROWTH) == []
    assert state.weekly["api_calls"] == {"2026-11-02": 600, "2026-11-09": 10}


def test_integrations_are_remembered_once() -> None:
    state = account()
    for event_id in ("i1", "i2"):
        connected = IntegrationConnectedEvent(id=event_id, account_id="acme", timestamp=T0, integration="slack")
        apply_event(state, connected, RULES)
    assert state.integrations == ["slack"]


def test_state_comes_back_from_the_table_as_it_was_written() -> None:
    """The table holds JSON: every kind of field (datetimes, nested usage, closed periods, id window) survives."""
    state = account({"api_calls": 100, "seats": 10, "storage_gb": 10}, domains=["acme.com"])
    apply_event(state, usage(85, at=T0 - timedelta(days=30)), RULES)
    apply_event(state, usage(90), RULES)
    apply_event(state, user("ann@acme.com"), RULES)
    apply_event(state, GaugeEvent(id="g1", account_id="acme", timestamp=T0, metric="storage_gb", value=8.5), RULES)
    apply_event(state, feature("sso", T0), RULES)
    state.source_offsets["usage-events[0]"] = 41
    written = encode_state(state)
    stored = orjson.loads(written)
    assert stored["recent_event_ids"] == state.recent_event_ids.stored() and stored["history"] and stored["feature_tries"]
    assert load_state(written) == state
    assert load_state(stored) == state
    again = load_state(written)
    apply_event(again, usage(1, event_id="after-reload"), RULES)
    assert RecentIds.from_stored(orjson.loads(encode_state(again))["recent_event_ids"]).oldest_first()[-1] == id_hash("after-reload")
    with pytest.raises(msgspec.ValidationError, match="recent_event_ids"):
        load_state(orjson.dumps({**stored, "recent_event_ids": 7}))


def test_a_state_written_before_the_hashed_window_is_read() -> None:
    """What the table holds from earlier versions: every field written (nulls and empties too), `+00:00` times,
    the ids themselves as a list (or, earlier still, an object)."""
    earlier = {
        "account_id": "acme",
        "limits": {"api_calls": 100.0},
        "domains": ["acme.com"],
        "billing_anchor": None,
        "period": "2026-11-01",
        "usage": {"api_calls": {"used": 85.0, "level_at": None, "fired": [0.8], "arm_generation": 0, "sustained_fired": False}},
        "history": {"2026-10-01": {"api_calls": {"used": 90.0, "limit": 100.0}}},
        "weekly": {"api_calls": {"2026-11-09": 85.0}},
        "growth_fired": [],
        "users": {},
        "teams": [],
        "seen_domains": [],
        "features": [],
        "feature_tries": {"sso": ["2026-11-10T12:00:00+00:00"]},
        "features_fired": [],
        "integrations": [],
        "recent_event_ids": ["e1", "e2"],
        "source_offsets": {"usage-events[0]": 41},
    }
    for ids in (["e1", "e2"], {"e1": None, "e2": None}):
        state = load_state(orjson.dumps({**earlier, "recent_event_ids": ids}))
        assert "e1" in state.recent_event_ids and "e2" in state.recent_event_ids and "e3" not in state.recent_event_ids
        assert state.usage["api_calls"].fired == [0.8] and state.history["2026-10-01"]["api_calls"].limit == 100
        assert state.feature_tries["sso"] == [T0]
        assert apply_event(state, usage(1, event_id="e2"), RULES) == [] and state.usage["api_calls"].used == 85  # a repeat
        crossed = apply_event(state, usage(6, event_id="e3"), RULES)  # 91 %, and October's 90 % makes it sustained
        assert [(signal.type, signal.threshold) for signal in crossed] == [
            (SignalType.USAGE_THRESHOLD_CROSSED, 0.9),
            (SignalType.USAGE_SUSTAINED_HIGH, 0.8),
        ]
