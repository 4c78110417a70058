"""The notifier's service layer: work through due deliveries, one channel call each, recorded after."""

from __future__ import annotations

import asyncio
import logging
import random

from prometheus_client import Counter

from services.notifier.channels import Channel, PermanentDelivery, RetryableDelivery
from services.notifier.domain import retry_delay
from services.notifier.outbox import DueDelivery, Outbox

log = logging.getLogger(__name__)

DELIVERIES = Counter("radar_notifier_deliveries", "Delivery attempts, by channel and outcome", ["channel", "outcome"])


class Sender:
    def __init__(self, outbox: Outbox, channels: dict[str, Channel], max_attempts: int = 8) -> None:
        self._outbox = outbox
        self._channels = channels
        self._max_attempts = max_attempts
        self.wake = asyncio.Event()

    async def deliver(self, due: DueDelivery) -> None:
        channel = self._channels.get(due.channel)
        if channel is None:
            await self._outbox.mark_failed(due.delivery_id, f"channel {due.channel!r} is not configured")
            DELIVERIES.labels(due.channel, "unconfigured").inc()
            return
        try:
            await channel.send(due.alert)
        except RetryableDelivery as exc:
            if due.attempts + 1 >= self._max_attempts:
                await self._outbox.mark_failed(due.delivery_id, str(exc))
                DELIVERIES.labels(due.channel, "failed").inc()
                log.error("giving up on %s via %s after %d attempts: %s", due.alert.alert_id, due.channel, due.attempts + 1, exc)
                return
            delay = retry_delay(due.attempts, exc.retry_after_s, random.random())
            await self._outbox.mark_retry(due.delivery_id, delay, str(exc))
            DELIVERIES.labels(due.channel, "retry").inc()
            log.warning("delivery of %s via %s will retry in %.1fs: %s", due.alert.alert_id, due.channel, delay, exc)
            return
        except PermanentDelivery as exc:
            await self._outbox.mark_failed(due.delivery_id, str(exc))
            DELIVERIES.labels(due.channel, "failed").inc()
            log.error("delivery of %s via %s refused: %s", due.alert.alert_id, due.channel, exc)
            return
        await self._outbox.mark_sent(due.delivery_id)
        DELIVERIES.labels(due.channel, "sent").inc()
        log.info(
            "alert delivered",
            extra={"alert_id": due.alert.alert_id, "account_id": due.alert.account_id, "channel": due.channel, "attempt": due.attempts + 1},
        )

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliveries go out one at a time, which also keeps each webhook under Slack's ~1/s pace."""
        while not stopping.is_set():
            try:
                batch = await self._outbox.due()
                for due in batch:
                    if stopping.is_set():
                        return
                    await self.deliver(due)
            except Exception:
                log.exception("sender loop error; retrying")
                batch = []
            if not batch:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=0.5)
                except TimeoutError:
                    pass
