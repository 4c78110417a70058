"""The notifier as a real process against Kafka, PostgreSQL, a Slack stand-in and a signed-webhook consumer:
outages, DLQ and replay, the address guard, the actions API and Slack's signed button requests."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

from shared.schemas import Alert, Driver, Signal, SignalType, Tier, UsageLine
from tests.helpers import TopicReader, produce, wait_for

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
FAST_RETRIES = """
notifier:
  backoff_base_seconds: 0.2
  backoff_cap_seconds: {cap}
  max_attempts: {attempts}
  slack:
    seconds_per_message: 0.05
"""


def config(tmp_path: Path, cap: float = 1.0, attempts: int = 100) -> str:
    path = tmp_path / "radar.yaml"
    path.write_text(FAST_RETRIES.format(cap=cap, attempts=attempts))
    return str(path)


def alert(account: str, number: int, signal_type: SignalType = SignalType.USAGE_THRESHOLD_CROSSED, tier: Tier = Tier.IMMEDIATE) -> Alert:
    signal = Signal(
        signal_id=f"{account}-s{number}",
        type=signal_type,
        account_id=account,
        metric=f"metric_{number}",
        value=820,
        limit=1000,
        utilization=0.82,
        threshold=0.8 if signal_type == SignalType.USAGE_THRESHOLD_CROSSED else None,
        growth=0.6 if signal_type == SignalType.USAGE_GROWTH else None,
        period="2026-11-01",
        event_id=f"e{number}",
        event_timestamp=NOW,
        emitted_at=NOW,
    )
    return Alert(
        alert_id=f"alert:{account}:{number}",
        account_id=account,
        account_name=f"{account.title()} Inc",
        signal=signal,
        score=85,
        tier=tier,
        drivers=[Driver(factor="product_usage", points=25, detail="metric at 82% of its limit")],
        usage=[UsageLine(metric=f"metric_{number}", value=820, limit=1000, utilization=0.82)],
        owner="dana",
        created_at=NOW,
    )


def records(*alerts: Alert) -> list[tuple[bytes, bytes]]:
    return [(a.account_id.encode(), a.model_dump_json().encode()) for a in alerts]


def radar(stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=120
    )


async def test_after_a_long_outage_every_alert_arrives_once_in_order_per_account(
    stack_factory, database_url, service_factory, slack_factory, webhook_factory, kafka_bootstrap, tmp_path
) -> None:
    slack, hook = slack_factory(), webhook_factory()
    hook.down = True
    slack.fail_next(3, status=503, retry_after=None)
    slack.fail_next(2, status=429, retry_after=1)
    stack = stack_factory(
        database_url,
        SLACK_WEBHOOK_URL=slack.url,
        WEBHOOK_URL=hook.url,
        WEBHOOK_SECRET=hook.secret,
        WEBHOOK_ALLOW_PRIVATE="1",
        RADAR_CONFIG=config(tmp_path),
    )
    notifier = service_factory("notifier", stack)
    sent = [alert(account, n) for n in range(1, 6) for account in ("acme", "beta")]
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(*sent[:6]))
    wait_for(lambda: hook.attempts >= 8, 60, "the webhook consumer to be tried through its outage")
    hook.delay_s = 0.3  # it comes back slowly, and with a 5xx burst and a rate limit
    hook.fail_next(2, status=502, retry_after=None)
    hook.fail_next(1, status=429, retry_after=1)
    hook.down = False
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(*sent[6:], sent[0], sent[3]))  # two repeats
    received = hook.wait_for_keys(len(sent), timeout=120)
    messages = slack.wait_for_messages(len(sent), timeout=120)

    assert hook.repeats() == {} and hook.bad_signatures == 0
    assert sorted(r["id"] for r in received) == sorted(f"{a.alert_id}:webhook" for a in sent)
    for account in ("acme", "beta"):
        expected = [a.alert_id for a in sent if a.account_id == account]
        assert [r["data"]["alert_id"] for r in received if r["data"]["account_id"] == account] == expected
        assert [m["text"].split("metric_")[1][0] for m in messages if f"{account.title()} Inc" in m["text"]] == [
            a.alert_id[-1] for a in sent if a.account_id == account
        ]
    assert len(messages) == len(sent)
    assert hook.secret not in notifier.log() and slack.url not in notifier.log()


async def test_a_refused_target_goes_to_the_dlq_and_replay_brings_it_back(
    stack_factory, database_url, service_factory, webhook_factory, kafka_bootstrap, tmp_path
) -> None:
    hook = webhook_factory()
    env = {"WEBHOOK_URL": hook.url, "WEBHOOK_SECRET": hook.secret, "RADAR_CONFIG": config(tmp_path, attempts=2)}
    stack = stack_factory(database_url, **env)
    notifier = service_factory("notifier", stack)  # loopback not allowed: the address guard refuses it
    async with TopicReader(kafka_bootstrap, stack.topics.notifications_dlq) as dlq:
        await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(alert("acme", 1)))
        letters = await dlq.wait_count(1, 60, "dead letters")
    letter = json.loads(letters[0].value)
    assert letter["alert_id"] == "alert:acme:1" and letter["channel"] == "webhook" and "non-public" in letter["error"]
    assert hook.attempts == 0, "nothing may be sent to a refused address"
    metrics = httpx.get(stack.url("notifier", "/metrics")).text
    assert 'radar_notifier_dead_letters_total{channel="webhook"} 1.0' in metrics

    listed = radar(stack, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "alert:acme:1" in listed.stdout and "1 dead letter(s)" in listed.stderr

    notifier.stop()
    service_factory("notifier", stack, WEBHOOK_ALLOW_PRIVATE="1")
    replayed = radar(stack, "dlq", "replay")
    assert replayed.returncode == 0 and "1 delivery(ies) queued again" in replayed.stderr, replayed.stderr
    assert hook.wait_for_keys(1)[0]["id"] == "alert:acme:1:webhook"
    again = radar(stack, "dlq", "replay")  # delivered now: a second replay sends nothing
    assert "0 delivery(ies)" in again.stderr
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(alert("acme", 2)))
    hook.wait_for_keys(2)
    assert hook.repeats() == {}


def slack_request(secret: str, payload: dict, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": signature, "content-type": "application/x-www-form-urlencoded"}
    return body, headers


async def test_fatigue_actions_and_slack_buttons(
    stack_factory, database_url, service_factory, slack_factory, api_key_factory, kafka_bootstrap, tmp_path
) -> None:
    slack = slack_factory()
    signing_secret = "8f742231b10e8888abcd99yyyzzz85a5"
    stack = stack_factory(
        database_url, SLACK_WEBHOOK_URL=slack.url, RADAR_SLACK_SIGNING_SECRET=signing_secret, RADAR_CONFIG=config(tmp_path)
    )
    service_factory("notifier", stack)
    key = api_key_factory(database_url)
    auth = {"Authorization": f"Bearer {key}"}
    api = httpx.Client(base_url=stack.url("notifier"), timeout=10)

    first = alert("acme", 1)
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(first))
    assert "alert:acme:1" in json.dumps(slack.wait_for_messages(1)[0]["blocks"])

    # Slack buttons: a bad signature, a stale timestamp and a good request
    done = {"type": "block_actions", "user": {"id": "U1", "username": "dana"}, "actions": [{"action_id": "done", "value": first.alert_id}]}
    body, headers = slack_request(signing_secret, done)
    assert api.post("/slack/interactions", content=body, headers={**headers, "x-slack-signature": "v0=" + "0" * 64}).status_code == 401
    stale_body, stale_headers = slack_request(signing_secret, done, timestamp=int(time.time()) - 600)
    assert api.post("/slack/interactions", content=stale_body, headers=stale_headers).status_code == 401
    assert api.post("/slack/interactions", content=body, headers=headers).status_code == 200  # done = one outreach logged

    # the actions API needs a key
    assert api.post("/v1/accounts/acme/outreach").status_code == 401
    logged = api.post("/v1/accounts/acme/outreach", headers=auth)
    assert logged.json()["outreaches_this_quarter"] == 2
    assert api.post("/v1/alerts/nope/dismiss", json={"reason": "x"}, headers=auth).status_code == 404
    assert api.post(f"/v1/alerts/{first.alert_id}/dismiss", json={"reason": ""}, headers=auth).status_code == 422

    # beta: opted out; gamma: snoozed; acme is over its outreach cap; delta is a marker that pings
    beta, gamma = alert("beta", 1), alert("gamma", 1)
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(beta, gamma))
    slack.wait_for_messages(3)
    assert api.put("/v1/accounts/beta/opt-out", json={"reason": "customer asked"}, headers=auth).status_code == 200
    until = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert api.post(f"/v1/alerts/{gamma.alert_id}/snooze", json={"until": until}, headers=auth).status_code == 200
    growth = alert("delta", 2, SignalType.USAGE_GROWTH, Tier.LOW)  # low urgency for a Low account: digest
    held = [alert("acme", 2), alert("beta", 2), alert("gamma", 2), growth]
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(*held, alert("delta", 3)))
    messages = slack.wait_for_messages(4)
    assert "Delta Inc" in messages[3]["text"] and len(messages) == 4

    digest = api.post("/v1/digest/send", headers=auth)
    assert digest.json() == {"sent": 3}  # acme (cap), gamma (snoozed), delta's growth; beta opted out
    text = slack.wait_for_messages(5)[4]["text"]
    assert text.startswith("Expansion digest: 3 signals") and "Acme Inc" in text and "Gamma Inc" in text and "Beta Inc" not in text
    assert api.post("/v1/digest/send", headers=auth).json() == {"sent": 0}
