"""The consume → handle → commit loop scoring and notifier share.

A handler either succeeds (the offset moves on), rejects the record as unreadable (logged, counted,
skipped: bad input never stops a partition), or fails transiently (database or broker down): then
the same record is retried with backoff, so nothing accepted is ever skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from shared.consumer_lag import track_consumer_lag

log = logging.getLogger(__name__)


class UnreadableRecord(Exception):
    """The record can never be handled (bad JSON, wrong schema): skip it rather than block the partition."""


Handler = Callable[[ConsumerRecord], Awaitable[None]]


async def _handle_with_retry(
    handler: Handler, record: ConsumerRecord, stopping: asyncio.Event, on_reject: Callable[[ConsumerRecord, Exception], None]
) -> bool:
    delay = 0.2
    while True:
        try:
            await handler(record)
            return True
        except UnreadableRecord as exc:
            on_reject(record, exc)
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handling %s[%s]@%s failed; retrying in %.1fs", record.topic, record.partition, record.offset, delay)
            if stopping.is_set():
                return False
            try:
                await asyncio.wait_for(stopping.wait(), timeout=delay * (1 + random.random() / 2))
            except TimeoutError:
                pass
            delay = min(delay * 2, 10.0)


async def run_consumer(
    consumer: AIOKafkaConsumer,
    handler: Handler,
    stopping: asyncio.Event,
    on_reject: Callable[[ConsumerRecord, Exception], None],
) -> None:
    """Runs until `stopping` is set; offsets are committed only for records fully handled, once per fetched batch
    for all its partitions: a commit is a broker round trip, and one per partition made a signal wait behind the
    commits of the usage-events partitions fetched with it."""
    while not stopping.is_set():
        batches = await consumer.getmany(timeout_ms=200, max_records=500)
        handled: dict[TopicPartition, int] = {}
        for partition, records in batches.items():
            for record in records:
                if not await _handle_with_retry(handler, record, stopping, on_reject):
                    break
                handled[TopicPartition(partition.topic, partition.partition)] = record.offset + 1
            if stopping.is_set():
                break
        if handled:
            try:
                await consumer.commit(handled)
            except CommitFailedError:
                # the group rebalanced under us (a broker outage past the session timeout, a new member): the records
                # go to their partitions' owners again from the committed offsets, and handlers drop what they saw.
                # Raising here would end this loop for good while the process stayed up, consuming nothing
                log.warning("commit refused after a rebalance; %d partitions' records will be handled again", len(handled))


async def start_with_retry(start: Callable[[], Awaitable[None]], what: str, timeout_s: float = 60) -> None:
    """Services wait for a broker that is still coming up instead of crashing at start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await start()
            return
        except Exception as exc:
            if loop.time() > deadline:
                raise
            log.warning("%s not reachable yet (%s); retrying", what, type(exc).__name__)
            await asyncio.sleep(1)


class ConsumerWorker:
    """Owns a consumer and its loop task: started in a service's lifespan, stopped on SIGTERM."""

    def __init__(self, consumer: AIOKafkaConsumer, handler: Handler, on_reject: Callable[[ConsumerRecord, Exception], None]) -> None:
        self.consumer = consumer
        self._handler = handler
        self._on_reject = on_reject
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.started = False

    async def start(self) -> None:
        await start_with_retry(self.consumer.start, "kafka consumer")
        self.started = True
        self._task = asyncio.create_task(run_consumer(self.consumer, self._handler, self._stopping, self._on_reject))
        group = getattr(self.consumer, "_group_id", None)
        if group:  # radar_consumer_lag{group, topic, partition} for the partitions this process owns
            self._lag_task = asyncio.create_task(track_consumer_lag(self.consumer, group, self._stopping))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, timeout_s: float = 15) -> None:
        """Finish the record in hand, commit, then leave the group so partitions move at once."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except TimeoutError:
                self._task.cancel()
            except Exception:
                log.exception("consumer loop ended with an error")
        if self._lag_task is not None:
            self._lag_task.cancel()
            await asyncio.gather(self._lag_task, return_exceptions=True)
        if self.started:
            await self.consumer.stop()
