"""Waiting for conditions with deadlines (never sleeping and hoping), small Kafka utilities, and the scripted
failures the stand-in HTTP APIs give."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.embedded_broker import free_port as free_port  # the fixtures and tests take it from here
from shared.event_records import decode_events

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until `predicate()` is truthy; fail naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def await_for(predicate: Callable[[], Awaitable[T]], timeout: float, what: str, interval: float = 0.1) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


class TopicReader:
    """Reads a topic from the beginning and accumulates what arrived, for `await_for` checks."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.records: list = []
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
        )

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> list:
        batches = await self._consumer.getmany(timeout_ms=200)
        for records in batches.values():
            self.records.extend(records)
        return self.records

    async def wait_count(self, count: int, timeout: float, what: str) -> list:
        async def enough() -> bool:
            return len(await self.poll()) >= count

        await await_for(enough, timeout, f"{count} {what} (have {len(self.records)})")
        return self.records

    def events(self) -> list[dict]:
        """The events of the records read so far, in order: a usage-events record holds an array of events
        (shared/event_records.py), or one."""
        return [event for record in self.records for event in decode_events(record.value)]

    async def wait_events(self, count: int, timeout: float, what: str) -> list[dict]:
        async def enough() -> bool:
            await self.poll()
            return len(self.events()) >= count

        await await_for(enough, timeout, f"{count} {what} (have {len(self.events())})")
        return self.events()

    async def drain_for(self, seconds: float) -> list:
        """Read whatever arrives during `seconds`; used only after a later marker proved processing moved on."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            await self.poll()
        return self.records


@dataclass
class ScriptedFailures:
    """What a stand-in API answers next instead of succeeding, in order: 429 + Retry-After, 5xx bursts."""

    queue: deque[tuple[int, dict[str, str], str]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, count: int, status: int = 429, retry_after: int | None = 1, body: str = "") -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self.lock:
            self.queue.extend([(status, headers, body)] * count)

    def next(self) -> tuple[int, dict[str, str], str] | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None
