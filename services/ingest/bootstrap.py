"""Wires ingest's adapters and handlers from settings and config; the only place that knows how they are built."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.config import RadarConfig
from services.ingest.adapters.declarations import DeclarationStore
from services.ingest.adapters.dedupe_store import DedupeStore
from services.ingest.adapters.produced_lookup import ProducedLookup
from services.ingest.adapters.producer import KafkaPublisher
from services.ingest.domain.config import IngestConfig
from services.ingest.handlers import IngestHandlers, prune_forever
from shared.auth import KeyStore
from shared.consumer_loop import start_with_retry
from shared.db import create_engine, database_ready, sessionmaker
from shared.kafka import make_consumer, make_producer
from shared.settings import Settings
from shared.topics import Topics


@dataclass
class IngestRuntime:
    settings: Settings
    config: IngestConfig
    engine: AsyncEngine
    producer: AIOKafkaProducer
    keys: KeyStore
    dedupe: DedupeStore
    handlers: IngestHandlers
    started: bool = field(default=False)
    _pruner: asyncio.Task[None] | None = field(default=None)

    async def start(self) -> None:
        await self.dedupe.start()
        await start_with_retry(self.producer.start, "kafka producer")
        self.started = True
        self._pruner = asyncio.create_task(prune_forever(self.dedupe, self.config.dedupe_prune_every_seconds), name="ingest-dedupe-pruner")

    async def stop(self) -> None:
        """Graceful: in-flight produces are flushed before the producer closes."""
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        if self.started:
            await self.producer.stop()
        await self.dedupe.close()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        return {"kafka": self.started, "database": await database_ready(self.engine)}


def build(settings: Settings, config: RadarConfig | None = None) -> IngestRuntime:
    ingest = (config or RadarConfig()).ingest
    engine = create_engine(settings.database_url, pre_ping=False)  # a dropped connection answers 503 (entrypoints/http.py)
    sessions = sessionmaker(engine)
    producer = make_producer(settings)
    # a claim must outlive the request that holds it: the produce timeout, twice over
    lease = timedelta(seconds=max(ingest.claim_lease_seconds, 2 * settings.radar_produce_timeout_s))
    dedupe = DedupeStore(engine, timedelta(days=ingest.dedupe_window_days), lease, settings.radar_produce_timeout_s)
    handlers = IngestHandlers(
        publisher=KafkaPublisher(producer, settings.radar_produce_timeout_s),
        dedupe=dedupe,
        declarations=DeclarationStore(sessions),
        topics=Topics.from_settings(settings),
        # a lapsed claim's produce was decided within three produce timeouts (KafkaPublisher.publish_events)
        produced=ProducedLookup(
            producer,
            lambda: make_consumer(settings, None, client_id=f"{settings.radar_consumer_group_prefix}-ingest-lookup"),
            settings.radar_produce_timeout_s,
            timedelta(seconds=3 * settings.radar_produce_timeout_s),
        ),
        max_inflight=ingest.max_inflight_requests,
    )
    return IngestRuntime(settings, ingest, engine, producer, KeyStore(sessions), dedupe, handlers)


@asynccontextmanager
async def declarations_publishing(settings: Settings) -> AsyncIterator[tuple[DeclarationStore, KafkaPublisher]]:
    """The declaration store and a started publisher, for the start-up republish (entrypoints/republish.py)."""
    engine = create_engine(settings.database_url)
    producer = make_producer(settings)
    try:
        await producer.start()
        yield DeclarationStore(sessionmaker(engine)), KafkaPublisher(producer, settings.radar_produce_timeout_s)
    finally:
        await producer.stop()
        await engine.dispose()
