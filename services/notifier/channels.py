"""Delivery channels (adapters). Each raises RetryableDelivery or PermanentDelivery on failure.

`key` is the delivery's stable idempotency key: receivers that can recognise a repeat get it
(the `webhook-id` of a signed webhook); Slack's incoming webhooks have no such field."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import orjson
from standardwebhooks import Webhook

from services.notifier.domain import UnsafeTarget, check_addresses, plain_text, slack_message
from shared.schemas import Alert


class RetryableDelivery(Exception):
    """`rate_limited`: the receiver cannot take messages for a while through no fault of this one (a 429, a full
    alert-log disk); that is a queue to wait in, not a failed attempt."""

    def __init__(self, reason: str, retry_after_s: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s
        self.rate_limited = rate_limited


class PermanentDelivery(Exception):
    """The receiver refused the message for good (bad URL, revoked webhook, unsafe target)."""


class Channel(Protocol):
    name: str
    seconds_per_message: float

    async def send(self, alert: Alert, key: str) -> None: ...


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _raise_for(response: httpx.Response, receiver: str) -> None:
    """429 and 5xx are worth retrying; other 4xx will not get better by themselves."""
    if 200 <= response.status_code < 300:
        return
    if response.status_code in (408, 409, 425, 429) or response.status_code >= 500:
        status = response.status_code
        raise RetryableDelivery(f"{receiver} answered {status}", _retry_after(response), rate_limited=status == 429)
    raise PermanentDelivery(f"{receiver} answered {response.status_code}: {response.text[:200]}")


class SlackWebhookChannel:
    """Incoming webhook: 200 "ok" on success; 429 with Retry-After when over ~1 message a second."""

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
        _raise_for(response, "slack")


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RetryableDelivery(f"webhook host {host!r} does not resolve: {exc.strerror}") from exc
    return sorted({str(info[4][0]) for info in infos})


class SignedWebhookChannel:
    """A generic webhook signed per the Standard Webhooks spec; `webhook-id` is the idempotency key."""

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
        _raise_for(response, "webhook")


class ConsoleChannel:
    """The local default: print the alert and append it as one JSON line to the alert log.

    The log only ever holds whole lines: a write that fails half-way (a full disk) is cut back off before the
    delivery is retried, and a line left torn by a crash mid-write is cut off before the next one is appended."""

    name = "console"
    seconds_per_message = 0.0
    disk_full_retry_s = 1.0  # how soon a full disk is tried again: it frees up when someone deletes a file

    def __init__(self, alert_log: Path) -> None:
        self._path = alert_log

    async def send(self, alert: Alert, key: str) -> None:
        line = orjson.dumps({"alert": alert.model_dump(mode="json"), "text": plain_text(alert), "key": key}) + b"\n"
        try:
            await asyncio.to_thread(append_whole_line, self._path, line)
        except OSError as exc:
            # a full disk is the receiver pausing, not this alert failing: it waits in the queue without spending attempts
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            reason = f"alert log {self._path} not writable: {exc.strerror or exc}"
            raise RetryableDelivery(reason, self.disk_full_retry_s if full else None, rate_limited=full) from exc
        print(f"🔔 {plain_text(alert)}", file=sys.stdout, flush=True)


TORN_TAIL_SEARCH = 1 << 20  # how far back a torn last line is looked for (a line is a few KB)


def append_whole_line(path: Path, line: bytes) -> None:
    """Appends `line` (ending in a newline) whole or not at all: on failure the file is cut back to its size before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = _cut_torn_tail(fd)
        written = 0
        try:
            while written < len(line):
                written += os.write(fd, line[written:])  # a nearly full disk takes part of a write
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _cut_torn_tail(fd: int) -> int:
    """The file's size once a last line without its newline (a crash between a partial write and its cut) is gone."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    start = max(0, size - TORN_TAIL_SEARCH)
    tail = os.pread(fd, size - start, start)
    keep = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start
    os.ftruncate(fd, keep)
    return keep
