"""One due delivery through its channel: quiet hours, the receiver's pauses, pacing, retries with backoff, and
the DLQ for what will not go through; each channel call is recorded right after it (entrypoints/runners.py claims).

A crash between a channel call and its record is the only place a repeat can come from; receivers that
get the idempotency key (signed webhooks, CRMs) recognise it, Slack cannot."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from prometheus_client import Counter

from services.notifier.adapters.channels.base import Channel, PermanentDelivery, RetryableDelivery
from services.notifier.adapters.outbox import DueDelivery, Outbox
from services.notifier.domain.config import NotifierConfig
from services.notifier.domain.quiet_hours import quiet_until
from services.notifier.domain.retry import gives_up, retry_delay
from shared.observability import observe_end_to_end
from shared.schemas import utcnow

log = logging.getLogger(__name__)

DELIVERIES = Counter("radar_notifier_deliveries", "Delivery attempts, by channel and outcome", ["channel", "outcome"])
DEAD_LETTERS = Counter("radar_notifier_dead_letters", "Deliveries given up on and sent to the DLQ topic, by channel", ["channel"])

DeadLetter = Callable[[DueDelivery, str], Awaitable[None]]
# a backed-off delivery is pulled forward only while its retry is at least this far off: until then no process can
# have claimed it (a claim needs it due), so pulling it forward never lets two processes send it
PULL_FORWARD_MARGIN_S = 2.0


class Sender:
    def __init__(self, outbox: Outbox, channels: dict[str, Channel], config: NotifierConfig, dead_letter: DeadLetter) -> None:
        self._outbox = outbox
        self._channels = channels
        self._config = config
        self._dead_letter = dead_letter
        self._last_sent: dict[str, float] = {}
        self._paused_until: dict[str, datetime] = {}
        self._backing_off: dict[str, dict[int, float]] = {}  # channel -> delivery id -> monotonic time of its retry

    async def _pace(self, channel: Channel) -> None:
        """Each webhook gets at most one message per `seconds_per_message` from this process."""
        last = self._last_sent.get(channel.name)
        if last is not None and channel.seconds_per_message > 0:
            wait = last + channel.seconds_per_message - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def deliver(self, due: DueDelivery) -> None:
        channel = self._channels.get(due.channel)
        if channel is None:
            await self._give_up(due, f"channel {due.channel!r} is not configured")
            return
        window = self._config.quiet_hours.get(due.channel)
        until = quiet_until(utcnow(), window) if window is not None else None
        if until is not None:
            await self._outbox.defer(due.delivery_id, until)
            DELIVERIES.labels(due.channel, "quiet").inc()
            return
        resume_at = self._paused_until.get(channel.name)
        if resume_at is not None and resume_at > utcnow():
            await self._outbox.defer(due.delivery_id, resume_at)  # the receiver asked for a pause
            return
        await self._pace(channel)
        try:
            try:
                await channel.send(due.alert, due.key)
            finally:
                self._last_sent[channel.name] = time.monotonic()
        except RetryableDelivery as exc:
            if exc.rate_limited:
                await self._wait_in_queue(due, channel, exc)
                return
            age_s = (utcnow() - due.alert.created_at).total_seconds()
            if gives_up(due.attempts + 1, age_s, self._config.max_attempts, self._config.retry_for_seconds):
                await self._give_up(due, f"{exc} (after {due.attempts + 1} attempts)")
                return
            delay = retry_delay(
                due.attempts, exc.retry_after_s, random.random(), self._config.backoff_base_seconds, self._config.backoff_cap_seconds
            )
            await self._outbox.mark_retry(due.delivery_id, delay, str(exc))
            self._backing_off.setdefault(channel.name, {})[due.delivery_id] = time.monotonic() + delay
            DELIVERIES.labels(due.channel, "retry").inc()
            log.warning("delivery of %s via %s will retry in %.1fs: %s", due.alert.alert_id, due.channel, delay, exc)
            return
        except PermanentDelivery as exc:
            await self._give_up(due, str(exc))
            return
        if await self._outbox.mark_sent(due.delivery_id):
            observe_end_to_end(due.alert.signal.event_timestamp)
        await self._pull_forward(channel.name)
        DELIVERIES.labels(due.channel, "sent").inc()
        log.info(
            "alert delivered",
            extra={"alert_id": due.alert.alert_id, "account_id": due.alert.account_id, "channel": due.channel, "attempt": due.attempts + 1},
        )

    async def _pull_forward(self, channel_name: str) -> None:
        """The channel took a message: it is back, so the deliveries that backed off during its outage go now
        (paced) instead of each waiting out a backoff of up to `backoff_cap_seconds` after it recovered."""
        waiting = self._backing_off.pop(channel_name, None)
        if not waiting:
            return
        still_off = time.monotonic() + PULL_FORWARD_MARGIN_S
        await self._outbox.release([delivery_id for delivery_id, retry_at in waiting.items() if retry_at > still_off])

    async def _wait_in_queue(self, due: DueDelivery, channel: Channel, exc: RetryableDelivery) -> None:
        """429 (or a full disk): the whole channel pauses for Retry-After, and the delivery keeps its attempts: a
        receiver that cannot take messages for a while never drops one."""
        delay = retry_delay(0, exc.retry_after_s, random.random(), self._config.backoff_base_seconds, self._config.backoff_cap_seconds)
        resume_at = utcnow() + timedelta(seconds=delay)
        self._paused_until[channel.name] = resume_at
        await self._outbox.defer(due.delivery_id, resume_at)
        DELIVERIES.labels(due.channel, "rate_limited").inc()
        log.warning("%s cannot take messages (%s); its queue waits %.1fs", due.channel, exc, delay)

    async def _give_up(self, due: DueDelivery, error: str) -> None:
        """The DLQ record goes first: if we die before marking the row, it is retried, never lost."""
        await self._dead_letter(due, error)
        await self._outbox.mark_dead(due.delivery_id, error)
        DELIVERIES.labels(due.channel, "failed").inc()  # the label deploy/prometheus/rules.yml alerts on
        DEAD_LETTERS.labels(due.channel).inc()
        log.error("delivery of %s via %s sent to the DLQ: %s", due.alert.alert_id, due.channel, error)
