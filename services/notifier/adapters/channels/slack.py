"""Slack incoming webhooks: 200 "ok" on success; 429 with Retry-After when over ~1 message a second."""

from __future__ import annotations

import httpx

from services.notifier.adapters.channels.base import RetryableDelivery, raise_for
from services.notifier.domain.messages import slack_message
from shared.schemas import Alert


class SlackWebhookChannel:
    def __init__(
        self,
        name: str,
        webhook_url: str,
        client: httpx.AsyncClient,
        crm_account_url: str | None = None,
        seconds_per_message: float = 1.0,
    ) -> None:
        self.name = name
        self.seconds_per_message = seconds_per_message
        self._url = webhook_url
        self._client = client
        self._crm_account_url = crm_account_url

    async def send(self, alert: Alert, key: str) -> None:
        await self.post(slack_message(alert, self._crm_account_url))

    async def post(self, message: dict[str, object]) -> None:
        try:
            response = await self._client.post(self._url, json=message)
        except httpx.HTTPError as exc:
            # the URL is a secret: name the error type only
            raise RetryableDelivery(f"slack unreachable: {type(exc).__name__}") from exc
        raise_for(response, "slack")

    async def post_text(self, text: str) -> None:
        await self.post({"text": text})
