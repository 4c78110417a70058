"""Wires the notifier: outbox, channels, the consumer, the sender and digest loops, the producers (DLQ, alert
actions) and the handlers they share; NotifierRuntime starts and stops them with the HTTP app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaProducer
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.ext.asyncio import AsyncEngine

from services.config import RadarConfig
from services.notifier.adapters.channels.base import Channel
from services.notifier.adapters.channels.console_log import ConsoleChannel, print_text
from services.notifier.adapters.channels.crm import HubSpotChannel, SalesforceChannel
from services.notifier.adapters.channels.slack import SlackWebhookChannel
from services.notifier.adapters.channels.webhook import SignedWebhookChannel
from services.notifier.adapters.dlq import DeadLetters
from services.notifier.adapters.outbox import Outbox
from services.notifier.domain.config import NotifierConfig
from services.notifier.domain.routing import SLACK_PREFIX
from services.notifier.entrypoints.kafka import consumer_worker
from services.notifier.entrypoints.runners import DeliveryLoop, digest_every
from services.notifier.handlers.commands import AlertCommands
from services.notifier.handlers.delivery import Sender
from services.notifier.handlers.records import RecordContext
from shared.auth import KeyStore
from shared.consumer_loop import ConsumerWorker
from shared.db import create_engine, database_ready, sessionmaker
from shared.kafka import AccountKeyedPublisher, make_producer
from shared.settings import Settings
from shared.topics import Topics


@dataclass
class NotifierRuntime:
    engine: AsyncEngine
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    worker: ConsumerWorker
    deliveries: DeliveryLoop
    commands: AlertCommands
    config: NotifierConfig
    keys: KeyStore
    slack_verifier: SignatureVerifier | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _sender_task: asyncio.Task[None] | None = None
    _digest_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.worker.start()
        self._sender_task = asyncio.create_task(self.deliveries.run(self._stopping))
        if self.config.fatigue.digest_every_hours:
            every = digest_every(self.config.fatigue.digest_every_hours, self.commands.send_digest, self._stopping)
            self._digest_task = asyncio.create_task(every)

    async def stop(self) -> None:
        """Stop taking records, let the delivery in hand finish, then close connections."""
        await self.worker.stop()
        self._stopping.set()
        self.deliveries.wake.set()
        if self._sender_task is not None:
            try:
                await asyncio.wait_for(self._sender_task, 15)
            except TimeoutError:
                self._sender_task.cancel()
        if self._digest_task is not None:
            self._digest_task.cancel()
        await self.producer.stop()
        await self.http.aclose()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        sender_ok = self._sender_task is not None and not self._sender_task.done()
        return {"kafka": self.worker.running, "sender": sender_ok, "database": await database_ready(self.engine)}


def build_channels(settings: Settings, config: NotifierConfig, http: httpx.AsyncClient) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    webhooks = {name: url.get_secret_value() for name, url in settings.radar_slack_webhooks.items()}
    if settings.slack_webhook_url is not None:
        webhooks.setdefault(config.slack.default_channel, settings.slack_webhook_url.get_secret_value())
    for name, url in webhooks.items():
        channels[SLACK_PREFIX + name] = SlackWebhookChannel(
            SLACK_PREFIX + name, url, http, settings.radar_crm_account_url, config.slack.seconds_per_message
        )
    if settings.webhook_url is not None:
        if settings.webhook_secret is None:
            raise ValueError("WEBHOOK_URL is set but WEBHOOK_SECRET is not: signed webhooks need a whsec_ secret")
        channels["webhook"] = SignedWebhookChannel(
            settings.webhook_url.get_secret_value(), settings.webhook_secret.get_secret_value(), http, settings.webhook_allow_private
        )
    if settings.hubspot_access_token is not None:
        token = settings.hubspot_access_token.get_secret_value()
        channels["hubspot"] = HubSpotChannel(settings.hubspot_base_url, token, http, config.crm_create_deals)
    if settings.salesforce_access_token is not None:
        if not settings.salesforce_instance_url:
            raise ValueError("SALESFORCE_ACCESS_TOKEN is set but SALESFORCE_INSTANCE_URL is not")
        token = settings.salesforce_access_token.get_secret_value()
        channels["salesforce"] = SalesforceChannel(
            settings.salesforce_instance_url, token, http, settings.salesforce_api_version, config.crm_create_deals
        )
    if not channels:
        channels["console"] = ConsoleChannel(settings.radar_alert_log)
    return channels


def digest_poster(channels: dict[str, Channel], config: NotifierConfig) -> Callable[[str], Awaitable[None]]:
    """The digest goes to the default Slack channel, or to the console when there is none."""
    channel = channels.get(SLACK_PREFIX + config.slack.default_channel)
    return channel.post_text if isinstance(channel, SlackWebhookChannel) else print_text


def build(settings: Settings, config: RadarConfig | None = None) -> NotifierRuntime:
    notifier_config = (config or RadarConfig()).notifier
    topics = Topics.from_settings(settings)
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine)
    outbox = Outbox(sessions, notifier_config.fatigue)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    channels = build_channels(settings, notifier_config, http)
    producer = make_producer(settings)
    sender = Sender(outbox, channels, notifier_config, DeadLetters(producer, topics.notifications_dlq).send)
    deliveries = DeliveryLoop(outbox, sender, notifier_config.claim_seconds)
    records = RecordContext(outbox, notifier_config.slack, tuple(channels), deliveries.wake.set)
    secret = settings.radar_slack_signing_secret
    return NotifierRuntime(
        engine=engine,
        http=http,
        producer=producer,
        worker=consumer_worker(settings, records),
        deliveries=deliveries,
        commands=AlertCommands(outbox, AccountKeyedPublisher(producer, topics.alert_actions), digest_poster(channels, notifier_config)),
        config=notifier_config,
        keys=KeyStore(sessions),
        slack_verifier=SignatureVerifier(secret.get_secret_value()) if secret else None,
    )


@asynccontextmanager
async def outbox_only(settings: Settings) -> AsyncIterator[Outbox]:
    """The outbox without the rest of the service, for one-off commands (`radar dlq replay`)."""
    engine = create_engine(settings.database_url)
    try:
        yield Outbox(sessionmaker(engine))
    finally:
        await engine.dispose()
