"""Wires the notifier: the alerts consumer feeding the outbox, the sender, the channels and the DLQ producer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx
import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.ext.asyncio import AsyncEngine

from services.config import RadarConfig
from services.notifier.channels import Channel, ConsoleChannel, SignedWebhookChannel, SlackWebhookChannel
from services.notifier.crm import HubSpotChannel, SalesforceChannel
from services.notifier.domain import Route, digest_text, slack_channel_for
from services.notifier.domain.config import NotifierConfig
from services.notifier.outbox import DueDelivery, Outbox
from services.notifier.sender import Sender
from shared.auth import KeyStore
from shared.consumer_loop import ConsumerWorker, UnreadableRecord
from shared.db import create_engine, database_ready, sessionmaker
from shared.kafka import make_consumer, make_producer
from shared.schemas import Alert, utcnow
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)

SLACK_PREFIX = "slack:"


@dataclass
class NotifierRuntime:
    engine: AsyncEngine
    http: httpx.AsyncClient
    outbox: Outbox
    channels: dict[str, Channel]
    sender: Sender
    config: NotifierConfig
    keys: KeyStore
    producer: AIOKafkaProducer
    dlq_topic: str
    slack_verifier: SignatureVerifier | None = None
    worker: ConsumerWorker = field(init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _sender_task: asyncio.Task[None] | None = None
    _digest_task: asyncio.Task[None] | None = None

    def channels_for(self, alert: Alert) -> list[str]:
        """One Slack channel (routed by owner/team/tier), plus every non-Slack channel."""
        slack_names = [name.removeprefix(SLACK_PREFIX) for name in self.channels if name.startswith(SLACK_PREFIX)]
        chosen = [SLACK_PREFIX + slack_channel_for(alert, self.config.slack, slack_names)] if slack_names else []
        return chosen + [name for name in self.channels if not name.startswith(SLACK_PREFIX)]

    async def handle(self, record: ConsumerRecord) -> None:
        try:
            alert = Alert.model_validate_json(record.value)
        except (ValidationError, TypeError) as exc:
            raise UnreadableRecord(str(exc)[:300]) from exc
        result = await self.outbox.store(alert, self.channels_for(alert))
        if result.decision is not None and result.decision.route != Route.PING:
            log.info("alert held", extra={"alert_id": alert.alert_id, "route": result.decision.route, "reason": result.decision.reason})
        if result.stored:
            self.sender.wake.set()

    async def dead_letter(self, due: DueDelivery, error: str) -> None:
        record = {
            "alert_id": due.alert.alert_id,
            "channel": due.channel,
            "key": due.key,
            "attempts": due.attempts + 1,
            "error": error,
            "failed_at": utcnow(),
            "alert": due.alert.model_dump(mode="json"),
        }
        await self.producer.send_and_wait(self.dlq_topic, orjson.dumps(record), key=due.alert.account_id.encode())

    async def send_digest(self) -> int:
        """One message with every held alert, to the default Slack channel (or the console)."""
        channel = self.channels.get(SLACK_PREFIX + self.config.slack.default_channel)

        async def send(alerts: list[Alert]) -> None:
            text = digest_text(alerts)
            if isinstance(channel, SlackWebhookChannel):
                await channel.post({"text": text})
            else:
                print(text, flush=True)

        return await self.outbox.digest(send)

    async def _digest_every(self, hours: float) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=hours * 3600)
                return
            except TimeoutError:
                pass
            try:
                sent = await self.send_digest()
                log.info("digest sent", extra={"alerts": sent})
            except Exception:
                log.exception("digest failed; its alerts wait for the next one")

    async def start(self) -> None:
        await self.producer.start()
        await self.worker.start()
        self._sender_task = asyncio.create_task(self.sender.run(self._stopping))
        if self.config.fatigue.digest_every_hours:
            self._digest_task = asyncio.create_task(self._digest_every(self.config.fatigue.digest_every_hours))

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
        if self._digest_task is not None:
            self._digest_task.cancel()
        await self.producer.stop()
        await self.http.aclose()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        sender_ok = self._sender_task is not None and not self._sender_task.done()
        return {"kafka": self.worker.running, "sender": sender_ok, "database": await database_ready(self.engine)}


def _reject(record: ConsumerRecord, exc: Exception) -> None:
    log.warning("skipping unreadable alert %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)


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


def build(settings: Settings, config: RadarConfig | None = None) -> NotifierRuntime:
    notifier_config = (config or RadarConfig()).notifier
    topics = Topics.from_settings(settings)
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine)
    outbox = Outbox(sessions, notifier_config.fatigue)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    channels = build_channels(settings, notifier_config, http)
    producer = make_producer(settings)
    secret = settings.radar_slack_signing_secret
    runtime = NotifierRuntime(
        engine=engine,
        http=http,
        outbox=outbox,
        channels=channels,
        sender=Sender(outbox, channels, notifier_config, lambda due, error: runtime.dead_letter(due, error)),
        config=notifier_config,
        keys=KeyStore(sessions),
        producer=producer,
        dlq_topic=topics.notifications_dlq,
        slack_verifier=SignatureVerifier(secret.get_secret_value()) if secret else None,
    )
    consumer = make_consumer(settings, settings.notifier_group, topics.expansion_alerts)
    runtime.worker = ConsumerWorker(consumer, runtime.handle, _reject)
    return runtime
