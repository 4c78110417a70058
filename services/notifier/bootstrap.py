"""Wires the notifier: the alerts consumer feeding the outbox, the sender, and the channels."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx
from aiokafka import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.channels import Channel, ConsoleChannel, SlackWebhookChannel
from services.notifier.outbox import Outbox
from services.notifier.sender import Sender
from shared.consumer_loop import ConsumerWorker, UnreadableRecord
from shared.db import create_engine, database_ready, sessionmaker
from shared.kafka import make_consumer
from shared.schemas import Alert
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class NotifierRuntime:
    engine: AsyncEngine
    http: httpx.AsyncClient
    outbox: Outbox
    channels: dict[str, Channel]
    sender: Sender
    worker: ConsumerWorker = field(init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _sender_task: asyncio.Task[None] | None = None

    async def handle(self, record: ConsumerRecord) -> None:
        try:
            alert = Alert.model_validate_json(record.value)
        except (ValidationError, TypeError) as exc:
            raise UnreadableRecord(str(exc)[:300]) from exc
        if await self.outbox.store(alert, list(self.channels)):
            self.sender.wake.set()

    async def start(self) -> None:
        await self.worker.start()
        self._sender_task = asyncio.create_task(self.sender.run(self._stopping))

    async def stop(self) -> None:
        """Stop taking alerts, let the delivery in hand finish, then close connections."""
        await self.worker.stop()
        self._stopping.set()
        self.sender.wake.set()
        if self._sender_task is not None:
            try:
                await asyncio.wait_for(self._sender_task, 15)
            except TimeoutError:
                self._sender_task.cancel()
        await self.http.aclose()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        sender_ok = self._sender_task is not None and not self._sender_task.done()
        return {"kafka": self.worker.running, "sender": sender_ok, "database": await database_ready(self.engine)}


def _reject(record: ConsumerRecord, exc: Exception) -> None:
    log.warning("skipping unreadable alert %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)


def build_channels(settings: Settings, http: httpx.AsyncClient) -> dict[str, Channel]:
    if settings.slack_webhook_url is not None:
        return {"slack": SlackWebhookChannel(settings.slack_webhook_url.get_secret_value(), http)}
    return {"console": ConsoleChannel(settings.radar_alert_log)}


def build(settings: Settings) -> NotifierRuntime:
    topics = Topics.from_settings(settings)
    engine = create_engine(settings.database_url)
    outbox = Outbox(sessionmaker(engine))
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    channels = build_channels(settings, http)
    runtime = NotifierRuntime(engine=engine, http=http, outbox=outbox, channels=channels, sender=Sender(outbox, channels))
    consumer = make_consumer(settings, settings.notifier_group, topics.expansion_alerts)
    runtime.worker = ConsumerWorker(consumer, runtime.handle, _reject)
    return runtime
