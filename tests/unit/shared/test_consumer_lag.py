"""Lag arithmetic and the gauge's series: high-water mark minus committed offset, per assigned partition."""

from __future__ import annotations

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from shared.consumer_lag import partition_lags, publish_lags

P0, P1, P2 = (TopicPartition("usage-events", n) for n in range(3))


def gauge(group: str, partition: TopicPartition) -> float | None:
    labels = {"group": group, "topic": partition.topic, "partition": str(partition.partition)}
    return REGISTRY.get_sample_value("radar_consumer_lag", labels)


def test_lag_is_highwater_minus_committed() -> None:
    assert partition_lags({P0: 10, P1: 7}, {P0: 4, P1: 7}) == {P0: 6, P1: 0}


def test_never_committed_counts_whole_unknown_highwater_is_left_out_and_lag_is_never_negative() -> None:
    assert partition_lags({P0: 5, P1: None, P2: 3}, {P0: None, P2: 9}) == {P0: 5, P2: 0}


def test_published_series_follow_the_assignment() -> None:
    published = publish_lags("unit-group", {P0: 3, P1: 1})
    assert (gauge("unit-group", P0), gauge("unit-group", P1)) == (3, 1)
    # a rebalance moved P1 away: its series goes, so the group's sum never counts it twice
    published = publish_lags("unit-group", {P0: 0}, published)
    assert (gauge("unit-group", P0), gauge("unit-group", P1)) == (0, None)
    publish_lags("unit-group", {}, published)
    assert gauge("unit-group", P0) is None
