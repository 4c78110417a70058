"""The bulk sender the worker's own records go through (changelog states, signals), and the signals publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiokafka.structs import RecordMetadata

from shared.event_records import partition_of
from shared.kafka import send_batches
from shared.schemas import Signal

# hands signals to the producer and returns their deliveries, which the worker awaits before writing state
Publish = Callable[[list[Signal]], Awaitable[list[Awaitable[Any]]]]

Batches = list[tuple[asyncio.Future[RecordMetadata], int]]


class RecordSender(Protocol):
    """Where the worker's own records go (changelog states, signals): enqueued in bulk, acknowledged per batch."""

    async def send(self, topic: str, records: Iterable[tuple[bytes | None, bytes, int]]) -> Batches: ...

    async def partition_count(self, topic: str) -> int: ...


class FaustProducerSender:
    """Through the Faust app's own aiokafka producer (acks=all, started with the app), a batch per partition."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def send(self, topic: str, records: Iterable[tuple[bytes | None, bytes, int]]) -> Batches:
        return await send_batches(self._app.producer._ensure_producer(), topic, records)

    async def partition_count(self, topic: str) -> int:
        return len(await self._app.producer._ensure_producer().partitions_for(topic))


def kafka_publisher(sender: RecordSender, topic: str) -> Publish:
    partitions = 0

    async def publish(signals: list[Signal]) -> list[Awaitable[Any]]:
        """Keyed by account and partitioned as Kafka's default partitioner would, in one batch per partition."""
        nonlocal partitions
        partitions = partitions or await sender.partition_count(topic)
        records = [(s.account_id.encode(), s.model_dump_json().encode(), partition_of(s.account_id, partitions)) for s in signals]
        return [future for future, _count in await sender.send(topic, records)]

    return publish
