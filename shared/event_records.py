"""The usage-events record format, in one place: what ingest writes and scoring (and tests) read.

A record's value is a JSON array of events whose accounts all hash to the record's partition (Kafka's default
partitioner, murmur2 of the account id); its key is that account id when the record holds one account's events,
else no key (the partition is explicit). One record per partition per request instead of one per event cuts
the per-record cost (producer, broker, every consumer) many times over, and keeps each account's events in
order on one partition. A value that is a single JSON object (one event) is still read, as earlier ingest
versions and other producers write it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

MAX_RECORD_BYTES = 128 * 1024  # a record's value is cut before this (an event is at most 32 KB): well under Kafka's 1 MB


@dataclass(frozen=True)
class GroupedRecord:
    partition: int
    key: bytes | None
    value: bytes
    count: int


@lru_cache(maxsize=65_536)
def partition_of(account_id: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key): cached, since it is pure Python and accounts repeat."""
    return (murmur2(account_id.encode()) & 0x7FFFFFFF) % partitions


def group_events(events: Iterable[tuple[str, bytes]], partitions: int, max_bytes: int = MAX_RECORD_BYTES) -> list[GroupedRecord]:
    """(account id, event JSON) pairs, in order, to records: one per partition (more only past `max_bytes`)."""
    groups: dict[int, tuple[list[bytes], set[str]]] = {}
    for account_id, payload in events:
        payloads, accounts = groups.setdefault(partition_of(account_id, partitions), ([], set()))
        payloads.append(payload)
        accounts.add(account_id)
    records: list[GroupedRecord] = []
    for partition, (payloads, accounts) in groups.items():
        key = next(iter(accounts)).encode() if len(accounts) == 1 else None
        chunk: list[bytes] = []
        size = 2
        for payload in payloads:
            if chunk and size + len(payload) + 1 > max_bytes:
                records.append(_record(partition, key, chunk))
                chunk, size = [], 2
            chunk.append(payload)
            size += len(payload) + 1
        records.append(_record(partition, key, chunk))
    return records


def _record(partition: int, key: bytes | None, payloads: list[bytes]) -> GroupedRecord:
    return GroupedRecord(partition, key, b"[" + b",".join(payloads) + b"]", len(payloads))


def decode_events(value: bytes | None) -> list[Any]:
    """A record's events as parsed JSON (not validated): an array's items, or the one object. Raises ValueError
    when the value is neither."""
    if value is None:
        return []
    document = orjson.loads(value)
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]
    raise ValueError(f"a usage-events record holds an event or an array of events, not {type(document).__name__}")
