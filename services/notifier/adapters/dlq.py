"""The notifications-dlq topic: a given-up delivery goes there, and `radar dlq list|replay` reads it back."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.notifier.adapters.outbox import DueDelivery
from shared.schemas import utcnow


class DeadLetters:
    """Writes one record per given-up delivery, keyed by account, carrying the whole alert so it can be replayed."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, due: DueDelivery, error: str) -> None:
        record = {
            "alert_id": due.alert.alert_id,
            "channel": due.channel,
            "key": due.key,
            "attempts": due.attempts + 1,
            "error": error,
            "failed_at": utcnow(),
            "alert": due.alert.model_dump(mode="json"),
        }
        await self._producer.send_and_wait(self._topic, orjson.dumps(record), key=due.alert.account_id.encode())


async def read_dead_letters(bootstrap_servers: str, topic: str) -> list[dict[str, Any]]:
    """Everything in the topic now, oldest first per partition; unreadable records are reported, not skipped silently."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await probe.start()
    try:
        exists = topic in await probe.topics()
    finally:
        await probe.stop()
    if not exists:
        return []
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no partitions of {topic} became available")
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[dict[str, Any]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    try:
                        letter = orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        letter = {"error": "unreadable DLQ record", "alert_id": "?", "channel": "?"}
                    letter["offset"] = f"{record.partition}:{record.offset}"
                    letters.append(letter)
        return letters
    finally:
        await consumer.stop()
