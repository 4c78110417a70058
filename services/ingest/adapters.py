"""Ingest's adapters: the Kafka publisher, the shared duplicate record and the declared accounts/plans in the database."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import delete, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import IngestDeclaration, IngestedEvent, insert_for
from shared.schemas import utcnow


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge in time (or ingest is saturated): the client must retry, nothing was promised."""


class KafkaPublisher:
    """Produces a request's records as one record batch per partition and waits for every ack at once: no
    per-record future or round trip, and the same partition as the default partitioner picks for the key."""

    def __init__(self, producer: AIOKafkaProducer, timeout_s: float) -> None:
        self._producer = producer
        self._timeout_s = timeout_s
        self._partition = DefaultPartitioner()

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        if not records:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                partitions = sorted(await self._producer.partitions_for(topic))
                by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
                for key, value in records:
                    by_partition[self._partition(key, partitions, partitions)].append((key, value))
                acks = []
                for partition, items in by_partition.items():
                    batch = self._producer.create_batch()
                    for key, value in items:
                        if batch.append(key=key, value=value, timestamp=None) is None:
                            acks.append(await self._producer.send_batch(batch, topic, partition=partition))
                            batch = self._producer.create_batch()
                            if batch.append(key=key, value=value, timestamp=None) is None:
                                raise BrokerUnavailable(f"a record of {len(value)} bytes does not fit a producer batch")
                    acks.append(await self._producer.send_batch(batch, topic, partition=partition))
                await asyncio.gather(*acks)
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}") from exc


class DedupeStore:
    """Event ids Kafka acknowledged within the window; shared by every ingest process through the database.

    On PostgreSQL each step is one statement with array parameters (`= ANY`, `unnest`): its text never changes,
    so it is prepared once per connection, whatever the batch size; the portable path serves SQLite."""

    _SEEN_PG = text("SELECT event_id FROM ingested_events WHERE event_id = ANY(:ids) AND received_at >= :since")
    _RECORD_PG = text(
        "INSERT INTO ingested_events (event_id, account_id, received_at) "
        "SELECT event_id, account_id, :now FROM unnest(CAST(:ids AS varchar[]), CAST(:accounts AS varchar[])) AS t(event_id, account_id) "
        "ON CONFLICT (event_id) DO UPDATE SET received_at = EXCLUDED.received_at"
    )

    def __init__(self, engine: AsyncEngine, window: timedelta) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self.window = window

    async def seen(self, event_ids: Iterable[str], now: datetime | None = None) -> set[str]:
        ids = list(set(event_ids))
        since = (now or utcnow()) - self.window
        if not ids:
            return set()
        async with self._engine.connect() as connection:
            if self._postgres:
                return set((await connection.execute(self._SEEN_PG, {"ids": ids, "since": since})).scalars())
            found: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = select(IngestedEvent.event_id).where(IngestedEvent.event_id.in_(chunk), IngestedEvent.received_at >= since)
                found.update((await connection.execute(query)).scalars())
            return found

    async def record(self, ids: Sequence[tuple[str, str]]) -> None:
        """(event id, account id) pairs; an id older than the window that is not pruned yet starts a new window."""
        if not ids:
            return
        now = utcnow()
        async with self._engine.begin() as connection:
            if self._postgres:
                event_ids, accounts = zip(*ids, strict=True)
                await connection.execute(self._RECORD_PG, {"ids": list(event_ids), "accounts": list(accounts), "now": now})
                return
            for start in range(0, len(ids), 300):
                rows = [{"event_id": event_id, "account_id": account, "received_at": now} for event_id, account in ids[start : start + 300]]
                statement = sqlite.insert(IngestedEvent).values(rows)
                await connection.execute(
                    statement.on_conflict_do_update(index_elements=["event_id"], set_={"received_at": statement.excluded.received_at})
                )

    async def prune(self, now: datetime | None = None, chunk: int = 10_000) -> int:
        """Drop ids past the window, a chunk at a time so no transaction holds the table long."""
        cutoff = (now or utcnow()) - self.window
        removed = 0
        while True:
            async with self._engine.begin() as connection:
                doomed = select(IngestedEvent.event_id).where(IngestedEvent.received_at < cutoff).limit(chunk).scalar_subquery()
                result = await connection.execute(delete(IngestedEvent).where(IngestedEvent.event_id.in_(doomed)))
            count = result.rowcount or 0
            removed += count
            if count < chunk:
                return removed


class DeclarationStore:
    """The last account/plan ingest published, as published; newer `updated_at` wins across processes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(IngestDeclaration, (kind, entity_id))
        return dict(row.payload) if row else None

    async def get_many(self, kind: str, entity_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(set(entity_ids))
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = await session.scalars(
                select(IngestDeclaration).where(IngestDeclaration.kind == kind, IngestDeclaration.entity_id.in_(ids))
            )
            return {row.entity_id: dict(row.payload) for row in rows}

    async def put(self, kind: str, items: Sequence[tuple[str, dict[str, Any], datetime]]) -> None:
        if not items:
            return
        async with self._sessions.begin() as session:
            for entity_id, payload, updated_at in items:
                statement = insert_for(session, IngestDeclaration).values(
                    kind=kind, entity_id=entity_id, payload=payload, updated_at=updated_at
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["kind", "entity_id"],
                        set_={"payload": statement.excluded.payload, "updated_at": statement.excluded.updated_at},
                        where=IngestDeclaration.updated_at <= statement.excluded.updated_at,
                    )
                )
