"""Ingest's adapters: the Kafka publisher and the shared duplicate record in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import IngestedEvent, insert_ignore
from shared.schemas import Event


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge in time: the client must retry, nothing was promised."""


class KafkaPublisher:
    def __init__(self, producer: AIOKafkaProducer, timeout_s: float) -> None:
        self._producer = producer
        self._timeout_s = timeout_s

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Enqueue every record, then wait for all acknowledgements at once (no per-record round trip)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = [await self._producer.send(topic, value=value, key=key) for key, value in records]
                await asyncio.gather(*futures)
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}") from exc


class DedupeStore:
    """Event ids Kafka has acknowledged; shared by every ingest process through the database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def seen(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(set(event_ids))
        found: set[str] = set()
        async with self._sessions() as session:
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                found.update(await session.scalars(select(IngestedEvent.event_id).where(IngestedEvent.event_id.in_(chunk))))
        return found

    async def record(self, events: Sequence[Event]) -> None:
        if not events:
            return
        async with self._sessions.begin() as session:
            rows = [{"event_id": event.id, "account_id": event.account_id} for event in events]
            await session.execute(insert_ignore(session, IngestedEvent, rows, ["event_id"]))
