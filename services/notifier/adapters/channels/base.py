"""What every delivery channel is and how it fails.

`key` is the delivery's stable idempotency key: receivers that can recognise a repeat get it
(the `webhook-id` of a signed webhook, the CRMs' external ids); Slack's incoming webhooks have no such field."""

from __future__ import annotations

from typing import Protocol

import httpx

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


def retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def raise_for(response: httpx.Response, receiver: str) -> None:
    """429 and 5xx are worth retrying; other 4xx will not get better by themselves."""
    if 200 <= response.status_code < 300:
        return
    if response.status_code in (408, 409, 425, 429) or response.status_code >= 500:
        status = response.status_code
        raise RetryableDelivery(f"{receiver} answered {status}", retry_after(response), rate_limited=status == 429)
    raise PermanentDelivery(f"{receiver} answered {response.status_code}: {response.text[:200]}")
