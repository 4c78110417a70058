"""Kafka helpers: topic creation, the acks=all producer and a consumer with manual commits."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from aiokafka.structs import RecordMetadata

from shared.settings import Settings
from shared.topics import Topics, TopicSpec

log = logging.getLogger(__name__)


def make_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """acks=all: a 2xx (or a committed offset) is only given once every in-sync replica has the record."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "linger_ms": 2,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": int(settings.radar_produce_timeout_s * 1000),
        "client_id": "radar",
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class RecordTooLarge(ValueError):
    """One record bigger than a whole producer batch (`max_batch_size`)."""


async def send_batches(
    producer: AIOKafkaProducer, topic: str, records: Iterable[tuple[bytes | None, bytes, int]]
) -> list[tuple[asyncio.Future[RecordMetadata], int]]:
    """Enqueue (key, value, partition) records as one record batch per partition, more only when one fills.

    aiokafka's `send()` costs a future and a metadata check per record; a built batch costs neither, which is
    several times cheaper when thousands of records go at once. Returns each batch's future (it resolves to
    the batch's metadata, its offset the first record's, once Kafka acknowledged) with its record count."""
    by_partition: dict[int, list[tuple[bytes | None, bytes]]] = defaultdict(list)
    for key, value, partition in records:
        by_partition[partition].append((key, value))
    sent: list[tuple[asyncio.Future[RecordMetadata], int]] = []
    try:
        for partition, items in by_partition.items():
            batch, count = producer.create_batch(), 0
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    sent.append((await producer.send_batch(batch, topic, partition=partition), count))
                    batch, count = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise RecordTooLarge(f"a record of {len(value)} bytes does not fit a producer batch for {topic}")
                count += 1
            sent.append((await producer.send_batch(batch, topic, partition=partition), count))
    except BaseException:
        abandon(future for future, _count in sent)
        raise
    return sent


def abandon(deliveries: Iterable[asyncio.Future[Any]]) -> None:
    """Deliveries no one will await: the produce that started them failed or timed out part-way, and the caller
    has already answered for them as a failure (a 503, a state left unwritten). Their outcome is read when they
    end, so a later failure is not logged by the event loop as an "exception was never retrieved"."""
    for delivery in deliveries:
        delivery.add_done_callback(_read_outcome)


def _read_outcome(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled():
        delivery.exception()


def make_consumer(settings: Settings, group_id: str | None, *topics: str, **overrides: object) -> AIOKafkaConsumer:
    """Manual commits only: offsets move after the work they stand for is durable. No group: partitions assigned by
    the caller (its client id then comes in `overrides`)."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "client_id": group_id,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None, timeout_s: float = 60) -> None:
    """Create the project's topics if missing; retried because a broker that just started may refuse briefly."""
    if specs is None:
        specs = Topics.from_settings(settings).specs(settings.radar_partitions, settings.radar_replication_factor)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="radar-admin")
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.config)
                for spec in specs
                if spec.name not in existing
            ]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass
                log.info("created topics %s", [topic.name for topic in missing])
            return
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


class AccountKeyed(Protocol):
    @property
    def account_id(self) -> str: ...

    def model_dump_json(self) -> str: ...


class AccountKeyedPublisher:
    """One topic's contract records, keyed by account like every topic, so one account's records stay in order;
    returns once Kafka acknowledged (acks=all)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, record: AccountKeyed) -> None:
        await self._producer.send_and_wait(self._topic, key=record.account_id.encode(), value=record.model_dump_json().encode())
