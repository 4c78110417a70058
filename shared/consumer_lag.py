"""Consumer lag per partition, for Prometheus: the partition's high-water mark minus the group's committed
offset, i.e. records written that the group has not finished. Each process reports the partitions it is
assigned, so `sum` over instances is the group's lag and no partition is counted twice.

ConsumerWorker (scoring, notifier) tracks it by itself; the signals worker (Faust) can publish what its
consumer knows with `publish_lags`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "radar_consumer_lag",
    "Records not yet committed by the consumer group, per assigned partition (high-water mark - committed offset)",
    ["group", "topic", "partition"],
)


Offsets = Mapping[TopicPartition, int | None]


def partition_lags(highwaters: Offsets, committed: Offsets) -> dict[TopicPartition, int]:
    """Lag per partition whose high-water mark is known. A partition the group never committed counts whole
    (the group starts from the earliest offset); a commit ahead of a stale high-water mark counts as 0."""
    lags: dict[TopicPartition, int] = {}
    for partition, highwater in highwaters.items():
        if highwater is None:
            continue
        lags[partition] = max(0, highwater - (committed.get(partition) or 0))
    return lags


def publish_lags(group: str, lags: Mapping[TopicPartition, int], previous: set[TopicPartition] | None = None) -> set[TopicPartition]:
    """Sets the gauge for these partitions and drops the series of partitions no longer assigned here."""
    for partition, lag in lags.items():
        CONSUMER_LAG.labels(group, partition.topic, str(partition.partition)).set(lag)
    for gone in (previous or set()) - set(lags):
        try:
            CONSUMER_LAG.remove(group, gone.topic, str(gone.partition))
        except KeyError:
            pass
    return set(lags)


async def sample_lags(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    assigned = consumer.assignment()
    if not assigned:
        return {}
    highwaters = await consumer.end_offsets(list(assigned))
    committed = {partition: await consumer.committed(partition) for partition in assigned}
    return partition_lags(highwaters, committed)


async def track_consumer_lag(consumer: AIOKafkaConsumer, group: str, stopping: asyncio.Event, interval_s: float = 5.0) -> None:
    """Samples until `stopping` is set; a failed sample is logged and retried next time, never fatal."""
    published: set[TopicPartition] = set()
    while not stopping.is_set():
        try:
            published = publish_lags(group, await sample_lags(consumer), published)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a rebalance or a broker hiccup: the next sample will do
            log.debug("consumer lag sample failed: %s", exc)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval_s)
        except TimeoutError:
            pass
    publish_lags(group, {}, published)
