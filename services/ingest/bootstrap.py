"""Wires ingest's adapters from settings; the only place that knows how they are built."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters import DedupeStore, KafkaPublisher
from services.ingest.service import IngestService
from shared.auth import KeyStore
from shared.consumer_loop import start_with_retry
from shared.db import create_engine, database_ready, sessionmaker
from shared.kafka import make_producer
from shared.settings import Settings
from shared.topics import Topics


@dataclass
class IngestRuntime:
    settings: Settings
    engine: AsyncEngine
    producer: AIOKafkaProducer
    keys: KeyStore
    service: IngestService
    started: bool = field(default=False)

    async def start(self) -> None:
        await start_with_retry(self.producer.start, "kafka producer")
        self.started = True

    async def stop(self) -> None:
        """Graceful: in-flight produces are flushed before the producer closes."""
        if self.started:
            await self.producer.stop()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        return {"kafka": self.started, "database": await database_ready(self.engine)}


def build(settings: Settings) -> IngestRuntime:
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine)
    producer = make_producer(settings)
    service = IngestService(
        publisher=KafkaPublisher(producer, settings.radar_produce_timeout_s),
        dedupe=DedupeStore(sessions),
        topics=Topics.from_settings(settings),
    )
    return IngestRuntime(settings, engine, producer, KeyStore(sessions), service)
