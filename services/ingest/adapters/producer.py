"""The Kafka publisher: a request's records produced and every ack (acks=all) awaited within the produce timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest.domain.errors import BrokerUnavailable, OutcomeUnknown, Undelivered
from shared.event_records import GroupedRecord, group_events, partition_of
from shared.kafka import RecordTooLarge, abandon, send_batches


class KafkaPublisher:
    """Produces a request's records and waits for every ack at once (acks=all), within the produce timeout."""

    def __init__(self, producer: AIOKafkaProducer, timeout_s: float) -> None:
        self._producer = producer
        self._timeout_s = timeout_s

    @asynccontextmanager
    async def _acknowledged(self, topic: str) -> AsyncIterator[int]:
        """The topic's partition count, for a produce that must be acknowledged within the timeout or become a 503."""
        try:
            async with asyncio.timeout(self._timeout_s):
                yield len(await self._producer.partitions_for(topic))
        except RecordTooLarge as exc:
            raise BrokerUnavailable(str(exc)) from exc
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}") from exc

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Keyed records (account or plan updates), each to the partition Kafka's default partitioner picks for its
        key, sent as one producer batch per partition."""
        if not records:
            return
        async with self._acknowledged(topic) as partitions:
            placed = ((key, value, partition_of(key.decode(), partitions)) for key, value in records)
            sent = await send_batches(self._producer, topic, placed)
            await asyncio.gather(*(ack for ack, _count in sent))

    async def publish_events(self, topic: str, events: Sequence[tuple[str, bytes]]) -> None:
        """(account id, event JSON) pairs as grouped records (shared/event_records.py): one record per partition.
        `send` rather than a batch of our own, so concurrent requests share the producer's batches to a partition.

        A record the producer took may still land after the produce timeout: answering 503 and releasing its ids
        then would have the client's retry produce it a second time, too late for signals' window of recent ids to
        drop it. So the answer waits for each record's own outcome (the producer fails what it cannot deliver
        within its request timeout): all delivered is a success even when late, none a plain 503, some an
        `Undelivered` naming the rest; a record still undecided past `3 x timeout` is an `OutcomeUnknown`."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        sent: list[tuple[asyncio.Future[Any], list[int]]] = []
        unsent: set[int] = set()
        failure = ""
        try:
            async with asyncio.timeout_at(deadline):
                partitions = len(await self._producer.partitions_for(topic))
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}") from exc
        grouped = group_events(events, partitions)
        records = list(zip(grouped, record_positions(events, partitions, grouped), strict=True))
        try:
            async with asyncio.timeout_at(deadline):
                for record, positions in records:
                    delivery = await self._producer.send(topic, value=record.value, key=record.key, partition=record.partition)
                    sent.append((delivery, positions))
        except (TimeoutError, KafkaError) as exc:
            failure = type(exc).__name__
            for _record, positions in records[len(sent) :]:
                unsent.update(positions)
        deliveries = [delivery for delivery, _positions in sent]
        if deliveries:
            try:
                _done, pending = await asyncio.wait(deliveries, timeout=max(0.0, deadline - loop.time()) + 2 * self._timeout_s)
            except BaseException:  # cancelled (shutdown): no one reads these outcomes any more
                abandon(deliveries)
                raise
            if pending:
                abandon(pending)
                raise OutcomeUnknown(f"{len(pending)} records neither delivered nor failed after {3 * self._timeout_s:.0f} s")
        for delivery, positions in sent:
            if delivery.exception() is not None:
                failure = failure or type(delivery.exception()).__name__
                unsent.update(positions)
        if not unsent:
            return
        if len(unsent) == len(events):
            raise BrokerUnavailable(f"Kafka did not acknowledge: {failure}")
        raise Undelivered(unsent, failure)


def record_positions(events: Sequence[tuple[str, bytes]], partitions: int, records: Sequence[GroupedRecord]) -> list[list[int]]:
    """The events' positions in each of `records` (what `group_events` made of them), record by record: it takes each
    partition's events in order and cuts them into consecutive records."""
    by_partition: dict[int, list[int]] = {}
    for position, (account_id, _payload) in enumerate(events):
        by_partition.setdefault(partition_of(account_id, partitions), []).append(position)
    taken: dict[int, int] = {}
    positions: list[list[int]] = []
    for record in records:
        start = taken.get(record.partition, 0)
        positions.append(by_partition[record.partition][start : start + record.count])
        taken[record.partition] = start + record.count
    return positions
