"""The notifications-dlq topic (adapter): read every dead letter up to the current end, and replay them."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from services.notifier.outbox import Outbox
from shared.db import create_engine, sessionmaker
from shared.settings import Settings
from shared.topics import Topics


async def read_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    """Everything in the topic now, oldest first per partition; unreadable records are reported, not skipped silently."""
    topic = Topics.from_settings(settings).notifications_dlq
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await probe.start()
    try:
        exists = topic in await probe.topics()
    finally:
        await probe.stop()
    if not exists:
        return []
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
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


async def replay(settings: Settings, letters: list[dict[str, Any]]) -> int:
    """Make each delivery pending again; ones since delivered are left alone. Returns how many were revived."""
    engine = create_engine(settings.database_url)
    try:
        outbox = Outbox(sessionmaker(engine))
        revived = 0
        for letter in letters:
            if "alert" in letter and await outbox.revive(letter["alert"], letter["channel"]):
                revived += 1
        return revived
    finally:
        await engine.dispose()
