from datetime import UTC, date, datetime

import pytest

from services.signals.domain import (
    AccountState,
    Rules,
    apply_account_update,
    apply_event,
    billing_period,
    matching_account_domain,
)
from shared.schemas import AccountUpdate, GaugeEvent, SignalType, UsageEvent, UserAddedEvent, UserRef

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
    return UsageEvent(id=event_id or f"e{next(_ids)}", type="usage", account_id="acme", timestamp=at, metric=metric, quantity=quantity)


def user(email: str, event_id: str | None = None) -> UserAddedEvent:
    return UserAddedEvent(
        id=event_id or f"u{next(_ids)}", type="user_added", account_id="acme", timestamp=T0, user=UserRef(id=email, email=email)
    )


def thresholds(signals) -> list[float]:  # type: ignore[no-untyped-def]
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
    assert thresholds(apply_event(state, usage(75, at=december), RULES)) == [0.8]


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
    gauge = GaugeEvent(id="g1", type="gauge", account_id="acme", timestamp=T0, metric="storage_gb", value=8.5)
    assert thresholds(apply_event(state, gauge, RULES)) == [0.8]
    gauge2 = GaugeEvent(id="g2", type="gauge", account_id="acme", timestamp=T0, metric="storage_gb", value=8.6)
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
    assert state.recent_event_ids == ["id2", "id3", "id4"]
