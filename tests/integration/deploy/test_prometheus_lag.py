"""radar_consumer_lag against real Kafka: a ConsumerWorker (scoring's and notifier's loop) reports, per
partition it owns, the records written that it has not committed yet."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import REGISTRY

from shared.consumer_lag import sample_lags
from shared.consumer_loop import ConsumerWorker
from shared.kafka import make_consumer
from tests.helpers import await_for, produce


def lags(group: str) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for metric in REGISTRY.collect()
        if metric.name == "radar_consumer_lag"
        for sample in metric.samples
        if sample.labels["group"] == group
    }


async def test_consumer_worker_reports_uncommitted_records_per_partition(stack_factory, kafka_bootstrap) -> None:
    stack = stack_factory()
    topic = stack.topics.usage_events
    group = f"lag-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, [(b"acme", f"r{i}".encode()) for i in range(5)])  # one key: one partition
    consumer = make_consumer(stack.settings, group, topic)
    release = asyncio.Event()
    handled: list[int] = []

    async def handler(record) -> None:
        if record.offset == 2:  # the third record stays in flight until released: nothing is committed before
            await release.wait()
        handled.append(record.offset)

    worker = ConsumerWorker(consumer, handler, on_reject=lambda *_: None)
    await worker.start()
    try:

        async def backlog_shown() -> bool:
            values = lags(group)
            return len(values) == stack.settings.radar_partitions and sorted(values.values())[-2:] == [0, 5]

        await await_for(backlog_shown, 60, "the gauge to show 5 uncommitted records on one partition, 0 on the rest")
        (busy,) = [partition for (_, partition), value in lags(group).items() if value == 5]
        assert {partition.partition: lag for partition, lag in (await sample_lags(consumer)).items() if lag} == {int(busy): 5}
        release.set()

        async def caught_up() -> bool:
            return lags(group).get((topic, busy)) == 0

        await await_for(caught_up, 30, "the gauge to fall to 0 once all five are handled and committed")
        assert handled == [0, 1, 2, 3, 4]
    finally:
        await worker.stop()
    assert lags(group) == {}  # a stopped consumer owns no partition any more: its series are gone
