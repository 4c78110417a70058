"""The shared consume loop outlives a commit the group refuses (a rebalance during a broker outage): it goes on
consuming instead of ending while the service stays up doing nothing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from shared.consumer_loop import run_consumer

pytestmark = pytest.mark.unit

PARTITION = TopicPartition("alerts", 0)


class RebalancedConsumer:
    """Hands out one record per fetch; its first commit is refused as after a rebalance."""

    def __init__(self, stopping: asyncio.Event, records: int) -> None:
        self.stopping = stopping
        self.offsets = iter(range(records))
        self.commits: list[dict[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        offset = next(self.offsets, None)
        if offset is None:
            self.stopping.set()
            return {}
        return {PARTITION: [SimpleNamespace(topic="alerts", partition=0, offset=offset)]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)
        if len(self.commits) == 1:
            raise CommitFailedError("the group has already rebalanced")


async def test_a_refused_commit_does_not_end_the_loop() -> None:
    stopping = asyncio.Event()
    consumer = RebalancedConsumer(stopping, records=3)
    handled: list[int] = []

    async def handle(record: Any) -> None:
        handled.append(record.offset)

    await asyncio.wait_for(run_consumer(consumer, handle, stopping, lambda _record, _exc: None), timeout=10)

    assert handled == [0, 1, 2]
    assert consumer.commits == [{PARTITION: 1}, {PARTITION: 2}, {PARTITION: 3}]
