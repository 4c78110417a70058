"""The notifier against real Kafka, PostgreSQL and a Slack stand-in that fails like Slack does."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.schemas import Alert, Driver, Signal, SignalType, Tier, UsageLine
from tests.helpers import produce, wait_for

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def alert(number: int) -> tuple[bytes, bytes]:
    signal = Signal(
        signal_id=f"s{number}",
        type=SignalType.USAGE_THRESHOLD_CROSSED,
        account_id="acme",
        metric=f"api_calls_{number}",  # another metric each: the same one at the same level is a repeat
        value=900,
        limit=1000,
        utilization=0.9,
        threshold=0.9,
        period="2026-11-01",
        event_id="e1",
        event_timestamp=NOW,
        emitted_at=NOW,
    )
    body = Alert(
        alert_id=f"alert:s{number}",
        account_id="acme",
        account_name="Acme Corp",
        signal=signal,
        score=85,
        tier=Tier.IMMEDIATE,
        drivers=[Driver(factor="product_usage", points=25.5, detail="api_calls at 90% of its limit")],
        usage=[UsageLine(metric="api_calls", value=900, limit=1000, utilization=0.9)],
        owner="dana",
        created_at=NOW,
    )
    return b"acme", body.model_dump_json().encode()


async def test_each_alert_reaches_slack_once_through_rate_limits_and_outages(
    stack_factory, database_url, service_factory, slack_factory, kafka_bootstrap
) -> None:
    slack = slack_factory()
    slack.fail_next(1, status=429, retry_after=1)
    slack.fail_next(1, status=503, retry_after=None)
    stack = stack_factory(database_url, SLACK_WEBHOOK_URL=slack.url)
    notifier = service_factory("notifier", stack)
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, [alert(1), alert(1), alert(2), alert(1)])
    messages = slack.wait_for_messages(2, timeout=60)
    # a later alert proves the duplicates were consumed before we count
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, [alert(3)])
    slack.wait_for_messages(3, timeout=60)
    assert len(messages) == 3
    assert slack.attempts == 5  # two failures retried, three deliveries
    assert all("Acme Corp" in m["text"] and "900 / 1000" in m["text"] for m in messages)
    assert slack.url not in notifier.log(), "the webhook URL is a secret and must never be logged"


async def test_without_slack_alerts_go_to_the_local_log(stack_factory, database_url, service_factory, kafka_bootstrap, tmp_path) -> None:
    log_path = tmp_path / "alerts.ndjson"
    stack = stack_factory(database_url, RADAR_ALERT_LOG=str(log_path))
    service_factory("notifier", stack)
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, [alert(1), alert(2)])
    lines = wait_for(
        lambda: log_path.exists() and len(log_path.read_text().splitlines()) >= 2 and log_path.read_text().splitlines(),
        60,
        "two lines in the alert log",
    )
    assert len(lines) == 2 and all("Acme Corp" in line for line in lines)
