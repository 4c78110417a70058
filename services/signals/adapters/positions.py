"""The input topics' positions: read them, check a hole, go back, commit.

Faust does not commit the input topics (they are declared with acks off): the worker commits, right after
the state covering the records is written, the positions its OffsetGuard admitted (adapters/offsets.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP


class Partitions(Protocol):
    def assigned(self) -> set[TP]: ...

    async def end_offsets(self, partitions: set[TP]) -> dict[TP, int]: ...

    async def start_position(self, partition: TP) -> int: ...

    async def has_records(self, partition: TP, start: int, end: int) -> bool: ...

    async def go_back(self, partition: TP, offset: int) -> None: ...

    async def commit(self, positions: Mapping[TP, int]) -> None: ...

    async def close(self) -> None: ...


class KafkaPartitions:
    """A small side client of its own for the questions, and the Faust consumer for seeks and commits."""

    def __init__(self, app: Any, bootstrap_servers: str, group_id: str, topics: set[str]) -> None:
        self._app = app
        self._topics = topics
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._reading = asyncio.Lock()  # the agent and the recovery watch both read logs through the one reader

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._reader is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=f"{self._group_id}-positions")
            await self._admin.start()
            self._reader = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, enable_auto_commit=False, client_id=f"{self._group_id}-positions"
            )
            await self._reader.start()
        return self._admin, self._reader

    def assigned(self) -> set[TP]:
        return {TP(tp.topic, tp.partition) for tp in self._app.consumer.assignment() if tp.topic in self._topics}

    async def end_offsets(self, partitions: set[TP]) -> dict[TP, int]:
        _admin, reader = await self._clients()
        ends = await reader.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in partitions])
        return {TP(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}

    async def start_position(self, partition: TP) -> int:
        """The group's committed offset, else the log's first (auto_offset_reset is earliest)."""
        admin, reader = await self._clients()
        tp = TopicPartition(partition.topic, partition.partition)
        committed = await admin.list_consumer_group_offsets(self._group_id, partitions=[tp])
        found = committed.get(tp)
        if found is not None and found.offset >= 0:
            return int(found.offset)
        return int((await reader.beginning_offsets([tp]))[tp])

    async def has_records(self, partition: TP, start: int, end: int) -> bool:
        """Whether the log holds any record in [start, end): if not, the gap is the log's own (compaction removed
        those records, or they were a transactional producer's markers, which no consumer is ever given)."""
        _admin, reader = await self._clients()
        tp = TopicPartition(partition.topic, partition.partition)
        # a broker that does not answer raises, and the caller restarts from its committed positions rather than guess
        async with self._reading, asyncio.timeout(30):
            reader.assign([tp])
            reader.seek(tp, start)
            while True:
                records = (await reader.getmany(tp, timeout_ms=1000, max_records=1)).get(tp, [])
                if records:
                    return records[0].offset < end
                if await reader.position(tp) >= end:  # past `end` without a record: only markers lay there
                    return False

    async def go_back(self, partition: TP, offset: int) -> None:
        await self._app.consumer.seek(partition, offset)

    async def commit(self, positions: Mapping[TP, int]) -> None:
        if positions:
            await self._app.consumer._commit(dict(positions))

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._reader = None
