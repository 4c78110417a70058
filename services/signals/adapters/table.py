"""The account-state table: a Faust table whose states are written in bulk, each to its own partition.

Faust's `table[key] = value` routes the changelog record by the *current* event's partition (a batch
mixes partitions) and through its producer buffer, which publishes one message at a time; the
bulk path below does neither, and its caller awaits delivery before acknowledging any event.

The RocksDB store (production) keeps one database per partition and picks it by the current event: a write
outside one (the flush) fails, and inside a batch, which mixes partitions, would land in the database of the
event taken last. So each state is written to, and read from, its own partition's database here.
"""

from __future__ import annotations

import asyncio

import faust
import orjson
from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import WriteBatch

from services.signals.adapters.sender import RecordSender

# RocksDB per partition database (rocksdb://). Faust's defaults allow 3 x 64 MiB of memtables and a 2 GiB block
# cache to each; a worker holds a database per active and per standby partition, inside a pod limited to 1 GiB
# (deploy/k8s). The worker keeps the states it works on in its own cache, so RocksDB is read on misses only.
ROCKSDB_OPTIONS = {"write_buffer_size": 8 * 1024**2, "max_write_buffer_number": 2, "block_cache_size": 16 * 1024**2}


class AccountTable(faust.Table):
    """Account state, written in bulk: each state to its own partition's changelog, a producer batch per partition."""

    def stored(self, account_id: str, partition: int | None = None) -> bytes | None:
        """The state last written for the account: from `partition`, the one its records (and so its changelog)
        are on, as the agent knows; without it, from whichever partition of this worker holds it."""
        store = self.data
        if not isinstance(store, RocksDBStore):
            return self.get(account_id)
        key = store._encode_key(account_id)
        if partition is not None:
            return store._db_for_partition(partition).get(key)
        found = store._get_bucket_for_key(key)
        return found.value if found is not None else None

    def _keep(self, writes: list[tuple[str, bytes, int]], keys: list[bytes]) -> None:
        store = self.data
        if not isinstance(store, RocksDBStore):
            for key, value, _partition in writes:
                store[key] = value
            return
        batches: dict[int, WriteBatch] = {}
        for key_bytes, (_key, value, partition) in zip(keys, writes, strict=True):
            batches.setdefault(partition, WriteBatch(raw_mode=True)).put(key_bytes, value)
            store._key_index[key_bytes] = partition  # where Faust's own lookups (the state endpoint) find it
        for partition, batch in batches.items():
            store._db_for_partition(partition).write(batch)

    async def write(self, sender: RecordSender, writes: list[tuple[str, bytes, int]]) -> int:
        """Sends the states (JSON, as `encode_state` wrote them) to the changelog and takes them into the table once
        Kafka has acknowledged every one: a write that fails leaves the table as its changelog has it."""
        records = [(orjson.dumps(key), value, partition) for key, value, partition in writes]
        batches = await sender.send(self.changelog_topic.get_topic_name(), records)
        delivered = await asyncio.gather(*(future for future, _count in batches))
        self._keep(writes, [key for key, _value, _partition in records])
        for metadata, (_future, count) in zip(delivered, batches, strict=True):
            # what Faust records after its own changelog sends: where a persistent store's recovery resumes
            self.data.set_persisted_offset(metadata.topic_partition, metadata.offset + count - 1)
        return len(records)


def account_table(app: faust.App, partitions: int) -> AccountTable:
    """Changelog keys and values are JSON, readable with any Kafka tool; the values are stored as encode_state wrote them."""
    table = AccountTable(
        app,
        name="account-state",
        default=None,
        schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="json", value_serializer="raw"),
        # the store's own codec comes from these, not the schema: without them a state read back from the changelog
        # (recovery, standby copies) is decoded to a dict where the worker wrote bytes
        key_type=str,
        value_type=bytes,
        partitions=partitions,
        beacon=app.tables.beacon,
        options=ROCKSDB_OPTIONS,
    )
    app.tables.add(table)
    return table
