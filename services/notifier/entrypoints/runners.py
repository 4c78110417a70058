"""The notifier's background loops: claiming due deliveries for the sender, and sending the digest on a timer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.notifier.adapters.outbox import DueDelivery, Outbox
from services.notifier.handlers.delivery import Sender

log = logging.getLogger(__name__)


class DeliveryLoop:
    """Claims due deliveries and hands each to the sender; `wake` cuts the idle wait short when an alert is stored."""

    def __init__(self, outbox: Outbox, sender: Sender, claim_seconds: float) -> None:
        self._outbox = outbox
        self._sender = sender
        self._claim_seconds = claim_seconds
        self.wake = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            batch: list[DueDelivery] = []
            try:
                batch = await self._outbox.claim(claim_seconds=self._claim_seconds)
                for index, due in enumerate(batch):
                    if stopping.is_set():
                        await self._outbox.release([d.delivery_id for d in batch[index:]])
                        return
                    await self._sender.deliver(due)
            except Exception:
                log.exception("sender loop error; retrying")
                batch = []
            if not batch:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=0.5)
                except TimeoutError:
                    pass


async def digest_every(hours: float, send_digest: Callable[[], Awaitable[int]], stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), timeout=hours * 3600)
            return
        except TimeoutError:
            pass
        try:
            sent = await send_digest()
            log.info("digest sent", extra={"alerts": sent})
        except Exception:
            log.exception("digest failed; its alerts wait for the next one")
