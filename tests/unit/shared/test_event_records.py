"""The usage-events record format: grouping per partition, keys, order, size cuts, and reading either shape."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from shared.event_records import decode_events, group_events, partition_of


def event(event_id: str, account: str) -> tuple[str, bytes]:
    return account, orjson.dumps({"id": event_id, "account_id": account, "type": "usage"})


def test_partition_of_is_kafkas_default_partitioner() -> None:
    default, partitions = DefaultPartitioner(), list(range(4))
    for account in ("acme", "globex", "initech", "a" * 200, "ümlaut"):
        assert partition_of(account, 4) == default(account.encode(), partitions, partitions)


def test_one_record_per_partition_keyed_only_when_it_holds_one_account() -> None:
    accounts = [f"acct-{n}" for n in range(20)]
    events = [event(f"e{n}", accounts[n % 20]) for n in range(100)]
    records = group_events(events, 4)
    assert sorted(record.partition for record in records) == sorted({partition_of(a, 4) for a in accounts})
    for record in records:
        inside = decode_events(record.value)
        assert record.count == len(inside)
        assert all(partition_of(item["account_id"], 4) == record.partition for item in inside)
        assert record.key is None  # five accounts per partition here
    # every event once, each partition's events in request order
    assert sorted(item["id"] for record in records for item in decode_events(record.value)) == sorted(f"e{n}" for n in range(100))
    for record in records:
        ids = [int(item["id"][1:]) for item in decode_events(record.value)]
        assert ids == sorted(ids)

    (single,) = group_events([event("x1", "acme"), event("x2", "acme")], 4)
    assert (single.key, single.partition, [item["id"] for item in decode_events(single.value)]) == (
        b"acme",
        partition_of("acme", 4),
        ["x1", "x2"],
    )


def test_a_partition_past_the_size_cap_is_cut_into_several_records_in_order() -> None:
    events = [event(f"e{n:03d}", "acme") for n in range(300)]
    records = group_events(events, 4, max_bytes=2_000)
    assert len(records) > 1 and all(len(record.value) <= 2_000 for record in records)
    assert [item["id"] for record in records for item in decode_events(record.value)] == [f"e{n:03d}" for n in range(300)]
    assert {record.key for record in records} == {b"acme"}


def test_decode_reads_arrays_single_objects_and_refuses_the_rest() -> None:
    assert decode_events(b'[{"id": "a"}, {"id": "b"}]') == [{"id": "a"}, {"id": "b"}]
    assert decode_events(b'{"id": "a"}') == [{"id": "a"}]
    assert decode_events(None) == []
    for bad in (b"{not json", b'"text"', b"7"):
        with pytest.raises(ValueError):
            decode_events(bad)
