from datetime import UTC, datetime

import pytest

from services.notifier.domain import plain_text, retry_delay, slack_message
from shared.schemas import Alert, Driver, Signal, SignalType, Tier, UsageLine, UserRef

NOW = datetime(2026, 11, 10, tzinfo=UTC)


def alert(signal: Signal, name: str = "Acme Corp") -> Alert:
    return Alert(
        alert_id="alert:1",
        account_id="acme",
        account_name=name,
        signal=signal,
        score=85,
        tier=Tier.IMMEDIATE,
        drivers=[Driver(factor="product_usage", points=25.5, detail="api_calls at 90% of its limit")],
        usage=[UsageLine(metric="api_calls", value=9000, limit=10000, utilization=0.9)],
        owner="dana@vendor.example",
        created_at=NOW,
    )


def usage_signal() -> Signal:
    return Signal(
        signal_id="s1",
        type=SignalType.USAGE_THRESHOLD_CROSSED,
        account_id="acme",
        metric="api_calls",
        value=9000,
        limit=10000,
        utilization=0.9,
        threshold=0.9,
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
