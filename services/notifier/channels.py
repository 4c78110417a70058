"""Delivery channels (adapters). Each raises RetryableDelivery or PermanentDelivery on failure."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Protocol

import httpx
import orjson

from services.notifier.domain import plain_text, slack_message
from shared.schemas import Alert


class RetryableDelivery(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentDelivery(Exception):
    """The receiver refused the message for good (bad URL, revoked webhook)."""


class Channel(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


class SlackWebhookChannel:
    """Incoming webhook: 200 "ok" on success; 429 with Retry-After when over ~1 message a second."""

    name = "slack"

    def __init__(self, webhook_url: str, client: httpx.AsyncClient) -> None:
        self._url = webhook_url
        self._client = client

    async def send(self, alert: Alert) -> None:
        try:
            response = await self._client.post(self._url, json=slack_message(alert))
        except httpx.HTTPError as exc:
            raise RetryableDelivery(f"slack unreachable: {type(exc).__name__}") from exc
        if response.status_code == 200:
            return
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableDelivery(f"slack answered {response.status_code}", _retry_after(response))
        # Slack's 4xx bodies name the problem (invalid_payload, no_service, ...); the URL is a secret, never logged
        raise PermanentDelivery(f"slack answered {response.status_code}: {response.text[:200]}")


class ConsoleChannel:
    """The local default: print the alert and append it as one JSON line to the alert log."""

    name = "console"

    def __init__(self, alert_log: Path) -> None:
        self._path = alert_log

    async def send(self, alert: Alert) -> None:
        line = orjson.dumps({"alert": alert.model_dump(mode="json"), "text": plain_text(alert)}) + b"\n"
        await asyncio.to_thread(self._append, line)
        print(f"🔔 {plain_text(alert)}", file=sys.stdout, flush=True)

    def _append(self, line: bytes) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("ab") as handle:
            handle.write(line)
