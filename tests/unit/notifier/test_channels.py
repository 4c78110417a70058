"""The channel adapters against in-process transports: signatures, idempotency keys, error mapping."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.notifier.adapters.channels.base import PermanentDelivery, RetryableDelivery
from services.notifier.adapters.channels.crm import HubSpotChannel, SalesforceChannel
from services.notifier.adapters.channels.slack import SlackWebhookChannel
from services.notifier.adapters.channels.webhook import SignedWebhookChannel
from shared.schemas import Alert, Signal, SignalType, Tier

NOW = datetime(2026, 11, 10, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def alert() -> Alert:
    signal = Signal(
        signal_id="s1",
        type=SignalType.USAGE_THRESHOLD_CROSSED,
        account_id="acme",
        metric="api_calls",
        value=8200,
        limit=10000,
        utilization=0.82,
        threshold=0.8,
        event_id="e1",
        event_timestamp=NOW,
        emitted_at=NOW,
    )
    return Alert(
        alert_id="alert:s1",
        account_id="acme",
        account_name="Acme",
        signal=signal,
        score=82,
        tier=Tier.IMMEDIATE,
        drivers=[],
        created_at=NOW,
    )


def recorder(status: int = 200, headers: dict[str, str] | None = None) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers=headers or {}, text="ok" if status == 200 else "nope")

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), seen


async def test_signed_webhooks_verify_with_the_standardwebhooks_library_and_carry_the_key() -> None:
    client, seen = recorder()
    channel = SignedWebhookChannel("http://127.0.0.1:9/hook", SECRET, client, allow_private=True)
    await channel.send(alert(), "alert:s1:webhook")
    request = seen[0]
    headers = {name: request.headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    assert headers["webhook-id"] == "alert:s1:webhook"
    payload = Webhook(SECRET).verify(request.content, headers)
    assert payload["type"] == "alert.expansion" and payload["data"]["alert_id"] == "alert:s1"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.content.replace(b"8200", b"9200"), headers)
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.content, headers)


async def test_a_loopback_webhook_is_refused_unless_allowed_and_nothing_is_sent() -> None:
    client, seen = recorder()
    channel = SignedWebhookChannel("http://127.0.0.1:9/hook", SECRET, client, allow_private=False)
    with pytest.raises(PermanentDelivery, match="non-public"):
        await channel.send(alert(), "k")
    assert seen == []


@pytest.mark.parametrize(
    ("status", "error"), [(429, RetryableDelivery), (503, RetryableDelivery), (401, PermanentDelivery), (404, PermanentDelivery)]
)
async def test_receiver_answers_map_to_retry_or_give_up(status: int, error: type[Exception]) -> None:
    client, _ = recorder(status, {"Retry-After": "7"})
    channel = SignedWebhookChannel("http://127.0.0.1:9/hook", SECRET, client, allow_private=True)
    with pytest.raises(error) as raised:
        await channel.send(alert(), "k")
    if isinstance(raised.value, RetryableDelivery):
        assert raised.value.retry_after_s == 7


async def test_slack_errors_never_carry_the_webhook_url() -> None:
    url = "https://hooks.slack.example/services/T0/B0/secret-token"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("boom " + str(request.url))

    channel = SlackWebhookChannel("slack:default", url, httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with pytest.raises(RetryableDelivery) as raised:
        await channel.send(alert(), "k")
    assert "secret-token" not in str(raised.value)


async def test_slack_gets_block_kit_with_the_plain_text_fallback() -> None:
    client, seen = recorder()
    await SlackWebhookChannel("slack:default", "https://hooks.slack.example/x", client).send(alert(), "k")
    body = json.loads(seen[0].content)
    assert "crossed 80%" in body["text"] and "8200 / 10000" in body["text"]
    assert body["blocks"][0]["type"] == "header"


async def test_hubspot_treats_a_conflict_on_the_alert_key_as_already_delivered() -> None:
    answers = iter([httpx.Response(200, json={"results": []}), httpx.Response(409, json={"category": "CONFLICT"})])
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: next(answers)))
    await HubSpotChannel("https://api.hubapi.example", "token", client).send(alert(), "alert:s1:hubspot")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (403, '[{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]', RetryableDelivery),
        (401, '[{"errorCode": "INVALID_SESSION_ID"}]', PermanentDelivery),
        (400, '[{"errorCode": "INVALID_FIELD"}]', PermanentDelivery),
        (503, "", RetryableDelivery),
    ],
)
async def test_salesforce_answers_map_to_retry_or_give_up(status: int, body: str, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text=body)

    channel = SalesforceChannel("https://acme.my.salesforce.example", "token", httpx.AsyncClient(transport=httpx.MockTransport(handle)))
    with pytest.raises(error):
        await channel.send(alert(), "alert:s1:salesforce")
    assert seen[0].method == "PATCH" and seen[0].url.raw_path.endswith(b"/sobjects/Task/Radar_Alert_Key__c/alert%3As1%3Asalesforce")
