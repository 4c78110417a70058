"""Wires scoring: consumer of signals and account updates, producer of alerts, the database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring import handlers
from services.scoring.metrics import RECORDS, SCORE_UPDATES
from services.scoring.repository import ScoringRepository
from shared.auth import KeyStore
from shared.config import RadarConfig
from shared.consumer_loop import ConsumerWorker, UnreadableRecord, start_with_retry
from shared.db import create_engine, database_ready, sessionmaker
from shared.kafka import make_consumer, make_producer
from shared.schemas import AccountUpdate, Signal
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class ScoringRuntime:
    settings: Settings
    config: RadarConfig
    topics: Topics
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    worker: ConsumerWorker
    keys: KeyStore
    producer_started: bool = False

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[ScoringRepository]:
        async with self.sessions.begin() as session:
            yield ScoringRepository(session)

    async def handle(self, record: ConsumerRecord) -> None:
        """Account updates refresh the account; a signal is scored, stored, and its alert published."""
        try:
            if record.topic == self.topics.account_updates:
                await handlers.handle_account_update(self.unit_of_work, AccountUpdate.model_validate_json(record.value))
                RECORDS.labels("account_update", "processed").inc()
                return
            signal = Signal.model_validate_json(record.value)
        except (ValidationError, TypeError) as exc:
            raise UnreadableRecord(str(exc)[:300]) from exc
        alert = await handlers.handle_signal(self.unit_of_work, signal, self.config.scoring)
        await self.producer.send_and_wait(
            self.topics.expansion_alerts, key=alert.account_id.encode(), value=alert.model_dump_json().encode()
        )
        RECORDS.labels("signal", "processed").inc()
        SCORE_UPDATES.labels(alert.tier.value).inc()

    async def start(self) -> None:
        await start_with_retry(self.producer.start, "kafka producer")
        self.producer_started = True
        await self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()
        if self.producer_started:
            await self.producer.stop()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        return {"kafka": self.producer_started and self.worker.running, "database": await database_ready(self.engine)}


def _reject(record: ConsumerRecord, exc: Exception) -> None:
    RECORDS.labels("unknown", "rejected").inc()
    log.warning("skipping unreadable record %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)


def build(settings: Settings, config: RadarConfig) -> ScoringRuntime:
    topics = Topics.from_settings(settings)
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine)
    runtime: ScoringRuntime
    consumer = make_consumer(settings, settings.scoring_group, topics.account_updates, topics.expansion_signals)

    async def handle(record: ConsumerRecord) -> None:
        await runtime.handle(record)

    runtime = ScoringRuntime(
        settings=settings,
        config=config,
        topics=topics,
        engine=engine,
        sessions=sessions,
        producer=make_producer(settings),
        worker=ConsumerWorker(consumer, handle, _reject),
        keys=KeyStore(sessions),
    )
    return runtime
