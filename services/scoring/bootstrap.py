"""Wires scoring: the database and its units of work, the Kafka producer (alerts, the console's alert actions), the
consumer (entrypoints/kafka.py) with the handlers' context, the key store and the weekly summary loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.config import RadarConfig
from services.scoring.adapters.repository import ScoringRepository
from services.scoring.adapters.transactions import units_of_work
from services.scoring.entrypoints.kafka import consumer_worker
from services.scoring.handlers import Context
from services.scoring.outcomes.adapters.repository import OutcomesRepository
from services.scoring.outcomes.entrypoints.summary import summary_every
from services.scoring.outcomes.handlers import Outcomes
from shared.auth import KeyStore
from shared.consumer_loop import ConsumerWorker, start_with_retry
from shared.db import create_engine, database_ready, sessionmaker
from shared.kafka import AccountKeyedPublisher, make_producer
from shared.settings import Settings
from shared.topics import Topics


@dataclass
class ScoringRuntime:
    settings: Settings
    config: RadarConfig
    topics: Topics
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outcomes: Outcomes
    producer: AIOKafkaProducer
    alert_actions: AccountKeyedPublisher  # the console's actions, for the notifier and for scoring's own consumer
    worker: ConsumerWorker
    keys: KeyStore
    producer_started: bool = False
    summary_task: asyncio.Task[None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def summary_webhook(self) -> str | None:
        """The owner's weekly summary goes where the notifier's default channel goes."""
        channel = self.settings.radar_slack_webhooks.get(self.config.notifier.slack.default_channel) or self.settings.slack_webhook_url
        return channel.get_secret_value() if channel else None

    async def start(self) -> None:
        await start_with_retry(self.producer.start, "kafka producer")
        self.producer_started = True
        await self.worker.start()
        if self.config.outcomes.summary_every_hours:
            self.summary_task = asyncio.create_task(summary_every(self.outcomes, self.config.outcomes, self.summary_webhook, self.stopping))

    async def stop(self) -> None:
        self.stopping.set()
        if self.summary_task is not None:
            self.summary_task.cancel()
        await self.worker.stop()
        if self.producer_started:
            await self.producer.stop()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        return {"kafka": self.producer_started and self.worker.running, "database": await database_ready(self.engine)}


def build(settings: Settings, config: RadarConfig) -> ScoringRuntime:
    topics = Topics.from_settings(settings)
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine)
    producer = make_producer(settings)
    outcomes = units_of_work(sessions, OutcomesRepository)
    context = Context(
        scores=units_of_work(sessions, ScoringRepository),
        outcomes=outcomes,
        config=config.scoring,
        publish_alert=AccountKeyedPublisher(producer, topics.expansion_alerts).publish,
    )
    return ScoringRuntime(
        settings=settings,
        config=config,
        topics=topics,
        engine=engine,
        sessions=sessions,
        outcomes=outcomes,
        producer=producer,
        alert_actions=AccountKeyedPublisher(producer, topics.alert_actions),
        worker=consumer_worker(settings, topics, context),
        keys=KeyStore(sessions),
    )
