"""A generic webhook signed per the Standard Webhooks spec; `webhook-id` is the idempotency key. The target's
addresses are checked on every send (domain/address_guard.py), so a DNS change cannot turn it inward."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import orjson
from standardwebhooks import Webhook

from services.notifier.adapters.channels.base import PermanentDelivery, RetryableDelivery, raise_for
from services.notifier.domain.address_guard import UnsafeTarget, check_addresses
from shared.schemas import Alert


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RetryableDelivery(f"webhook host {host!r} does not resolve: {exc.strerror}") from exc
    return sorted({str(info[4][0]) for info in infos})


class SignedWebhookChannel:
    seconds_per_message = 0.0

    def __init__(self, url: str, secret: str, client: httpx.AsyncClient, allow_private: bool = False, name: str = "webhook") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("WEBHOOK_URL must be an http(s) URL with a host")
        self.name = name
        self._url = url
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._signer = Webhook(secret)
        self._client = client
        self._allow_private = allow_private

    async def send(self, alert: Alert, key: str) -> None:
        try:
            check_addresses(self._host, await resolve(self._host, self._port), self._allow_private)
        except UnsafeTarget as exc:
            raise PermanentDelivery(str(exc)) from exc
        body = orjson.dumps({"type": f"alert.{alert.kind}", "timestamp": alert.created_at, "data": alert.model_dump(mode="json")})
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(key, now, body.decode()),
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise RetryableDelivery(f"webhook unreachable: {type(exc).__name__}") from exc
        raise_for(response, "webhook")
