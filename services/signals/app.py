"""The signals worker's entrypoint: a Faust app whose one agent keeps account state in a table.

Both input topics are keyed and partitioned by account id, so an account's events and updates reach
the same agent, which owns that account's table partition (concurrency 1: one writer per table).

How it stays exactly-once in effect and fast:
- the agent takes events in batches (`noack_take`); Faust does not commit the input topics (acks off);
- every record passes the OffsetGuard first (offsets.py): each partition's records reach the rules in
  offset order, once, with no hole — Faust can skip records around start-up and rebalances, and the
  worker then reads them again from the missing offset;
- a partition taken over (at start-up, on a rebalance) applies no usage until its account updates are read up to
  their end: a replay then meets the limits the first pass met, and emits the same crossings;
- a batch's signals are handed to the producer at once, and every delivery is awaited by
  the next flush, before any state is written: no state that records a crossing can reach the
  changelog ahead of the signal itself, and no batch waits for a broker round trip of its own;
- changed accounts are written to the table once per flush (`state_flush_seconds`), each to the
  changelog partition of its own source partition, one producer batch per partition, and only once
  Kafka has acknowledged those changelog records does the worker commit the input positions they cover
  (and the table take the states); that write runs while the agent goes on with the next batches, and
  the next flush waits for it, so writes and commits stay in order;
- each account's state keeps the input offset of the last record applied to it, so the records a
  crash makes Kafka redeliver (everything after the last commit) are skipped exactly where the
  written state already holds them. Re-emitted crossings carry the same signal ids, which downstream drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import faust
import orjson
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from rocksdict import WriteBatch

from services.config import RadarConfig
from services.signals.adapters import FaustProducerSender, KafkaPartitions, Partitions, RecordSender
from services.signals.domain import dump_state, load_state
from services.signals.handlers import AccountStates, Publish, Record, apply_batch, rules_from_config
from services.signals.offsets import Admission, OffsetGuard
from services.signals.recovery_watch import RecoveryWatch, RecoveryWatchService
from shared.event_records import partition_of
from shared.schemas import Signal
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)

# RocksDB per partition database (rocksdb://). Faust's defaults allow 3 x 64 MiB of memtables and a 2 GiB block
# cache to each; a worker holds a database per active and per standby partition, inside a pod limited to 1 GiB
# (deploy/k8s). The worker keeps the states it works on in its own cache, so RocksDB is read on misses only.
ROCKSDB_OPTIONS = {"write_buffer_size": 8 * 1024**2, "max_write_buffer_number": 2, "block_cache_size": 16 * 1024**2}
# how long a partition with unread records may stay silent before it is read again from its position
STALL_CHECK_SECONDS = 5.0
# usage records one partition may keep in memory while its account updates are read first
MAX_HELD_RECORDS = 20_000

RECORDS = Counter(
    "radar_signals_records",
    "Events and account updates processed (their signals handed to the producer), replayed, rejected or held back",
    ["kind", "outcome"],
)
SIGNALS = Counter("radar_signals_emitted", "Signals emitted (delivered to Kafka), by type", ["type"])
STATE_WRITES = Counter("radar_signals_state_writes", "Account states written to the table (and its changelog)")


def tune_garbage_collector() -> None:
    """A batch holds up to hundreds of thousands of short-lived event objects, and the default thresholds then
    run the cyclic collector over them hundreds of times a second (~12 % of the rules path, measured). The
    state itself holds no cycles worth chasing often."""
    gc.collect()
    gc.freeze()  # what start-up built (modules, Faust's app) is never garbage: out of every later scan
    gc.set_threshold(50_000, 20, 10)


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


class AccountTable(faust.Table):
    """Account state, written in bulk: each state to its own partition's changelog, a producer batch per partition.

    Faust's `table[key] = value` routes the changelog record by the *current* event's partition (a batch
    mixes partitions) and through its producer buffer, which publishes one message at a time; the
    bulk path below does neither, and its caller awaits delivery before acknowledging any event.

    The RocksDB store (production) keeps one database per partition and picks it by the current event: a write
    outside one (the flush) fails, and inside a batch, which mixes partitions, would land in the database of the
    event taken last. So each state is written to, and read from, its own partition's database here.
    """

    def stored(self, account_id: str, partition: int | None = None) -> bytes | None:
        """The state last written for the account: from `partition`, the one its records (and so its changelog)
        are on, as the agent knows; without it, from whichever partition of this worker holds it."""
        store = self.data
        if not isinstance(store, RocksDBStore):
            return self.get(account_id)  # type: ignore[no-any-return]
        key = store._encode_key(account_id)
        if partition is not None:
            return store._db_for_partition(partition).get(key)  # type: ignore[no-any-return]
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


@dataclass
class Hold:
    """A usage partition's records kept back until its account-updates partition reaches `end`. Bounded: past
    `MAX_HELD_RECORDS` it keeps nothing more, and the partition is read again from its position once released."""

    updates: TP
    end: int
    events: list[EventT] = field(default_factory=list)
    overflowed: bool = False


class SignalsWorker:
    """The agent's body, with the lock that keeps a flush from landing inside a batch."""

    def __init__(
        self,
        table: AccountTable,
        publish: Publish,
        topics: Topics,
        config: RadarConfig,
        partitions: int,
        positions: Partitions,
        sender: RecordSender,
    ) -> None:
        self.table = table
        self.sender = sender
        self.partitions = partitions
        self.publish = publish
        self.topics = topics
        self.rules = rules_from_config(config)
        self.states = AccountStates(load=self._stored_state)
        self.staged: dict[str, bytes] = {}  # the states of the flush in flight, not yet in the table
        self.positions = positions
        self.guard: OffsetGuard[TP] = OffsetGuard()
        # usage partitions waiting for their account updates (what arrives meanwhile is kept, in order)
        self.held: dict[TP, Hold] = {}
        self.last_arrival: dict[TP, float] = {}
        self.pending: list[tuple[StreamT, EventT]] = []
        # each batch's signal deliveries, awaited before the next state write
        self.deliveries: list[asyncio.Future[Any]] = []
        self.lock = asyncio.Lock()
        self.last_flush = 0.0
        self.writing: asyncio.Task[None] | None = None  # the flush whose write is in flight
        self.closed = False  # shutting down: no flush starts any more

    def _stored_state(self, account_id: str, partition: int) -> bytes | None:
        staged = self.staged.get(account_id)
        return staged if staged is not None else self.table.stored(account_id, partition)

    async def admitted(self, stream: StreamT, events: list[EventT]) -> list[EventT]:
        """The records the rules may see: each partition's in offset order, once, with no hole (offsets.py)."""
        admitted: list[EventT] = []
        await self._admit(stream, events, admitted)
        if self.held:  # only account updates release a hold, and what it releases is usage: one pass is enough
            released, reread = self._release_held()
            for usage in reread:
                await self.positions.go_back(usage, self.guard.go_back(usage))
            await self._admit(stream, released, admitted)  # after the account updates they waited for
        return admitted

    async def _admit(self, stream: StreamT, events: list[EventT], admitted: list[EventT]) -> None:
        for event in events:
            message = event.message
            hold = self.held.get(message.tp)
            verdict = Admission.HELD if hold else self.guard.admit(message.tp, message.offset)
            if verdict is Admission.UNKNOWN:
                self.guard.start(message.tp, await self.positions.start_position(message.tp))
                if message.topic == self.topics.usage_events:
                    hold = await self._hold_until_account_updates_read(message.tp)
                verdict = Admission.HELD if hold else self.guard.admit(message.tp, message.offset)
            if verdict is Admission.HELD and hold is not None and not hold.overflowed:
                if len(hold.events) < MAX_HELD_RECORDS:
                    hold.events.append(event)  # kept in order, admitted once the hold is released
                    continue
                hold.overflowed = True  # kept nothing more: read again from the position once released
                for kept in hold.events:
                    RECORDS.labels("any", verdict.value).inc()
                    await stream.ack(kept)
                hold.events.clear()
            if verdict is Admission.HOLE:
                missing_from = self.guard.expected[message.tp]
                if await self.positions.has_records(message.tp, missing_from, message.offset):
                    log.warning("records of %s from offset %d skipped before the agent: reading them again", message.tp, missing_from)
                    await self.positions.go_back(message.tp, self.guard.go_back(message.tp))
                    verdict = Admission.WAIT
                else:
                    self.guard.accept_gap(message.tp, message.offset)
                    verdict = Admission.APPLY
            if verdict is Admission.APPLY:
                admitted.append(event)
                self.last_arrival[message.tp] = asyncio.get_running_loop().time()
            else:
                RECORDS.labels("any", verdict.value).inc()
                await stream.ack(event)  # Faust's bookkeeping only: no offset moves for it

    async def _hold_until_account_updates_read(self, usage: TP) -> Hold | None:
        """A partition taken over is read again from its committed position, and Faust fetches the two input topics
        independently: replayed usage could run ahead of the account update it first followed, meet no limit, and
        then that update, crossing several thresholds at once, would emit only the highest; a signal first missed,
        then lost. So a partition's usage waits until its account updates are read up to the end they had then."""
        updates = TP(self.topics.account_updates, usage.partition)
        if updates not in self.guard.expected:
            self.guard.start(updates, await self.positions.start_position(updates))
        end = (await self.positions.end_offsets({updates})).get(updates, 0)
        if end <= self.guard.expected[updates]:
            return None
        log.info("%s waits until %s is read up to offset %d", usage, updates, end)
        hold = self.held[usage] = Hold(updates, end)
        return hold

    def _release_held(self) -> tuple[list[EventT], list[TP]]:
        """The usage records kept by every hold whose account updates are now applied (each partition's in order),
        and the partitions to read again from their position instead (their hold outgrew its buffer)."""
        released: list[EventT] = []
        reread: list[TP] = []
        for usage, hold in list(self.held.items()):
            if self.guard.expected.get(hold.updates, 0) >= hold.end:
                del self.held[usage]
                if hold.overflowed:
                    reread.append(usage)
                released += hold.events
        return released, reread

    def record(self, event: EventT) -> Record:
        message = event.message
        return Record(
            is_account_update=message.topic == self.topics.account_updates,
            key=message.key,
            value=event.value,
            partition=message.partition,
            where=f"{message.topic}[{message.partition}]@{message.offset}",
            partitions=self.partitions,
            source=f"{message.topic}[{message.partition}]",
            offset=message.offset,
        )

    async def handle(self, stream: StreamT, events: list[EventT]) -> None:
        async with self.lock:
            admitted = await self.admitted(stream, events)
            result = apply_batch((self.record(event) for event in admitted), self.states, self.rules)
            for problem in result.rejected:
                log.warning("%s", problem)
            # redelivered after a crash or rebalance and already in the written state: skipped
            RECORDS.labels("account", "replayed").inc(result.replayed_accounts)
            RECORDS.labels("event", "replayed").inc(result.replayed - result.replayed_accounts)
            RECORDS.labels("account", "rejected").inc(result.rejected_accounts)
            RECORDS.labels("event", "rejected").inc(len(result.rejected) - result.rejected_accounts)
            if result.signals:
                try:
                    delivered = asyncio.gather(*await self.publish(result.signals))
                except BaseException:
                    self._drop_unwritten()
                    raise
                delivered.add_done_callback(partial(_count_delivered, result.signals))
                self.deliveries.append(delivered)
            RECORDS.labels("account", "processed").inc(result.processed_accounts)
            RECORDS.labels("event", "processed").inc(result.processed - result.processed_accounts)
            self.pending.extend((stream, event) for event in admitted)

    def _drop_unwritten(self) -> None:
        """A signal not delivered, or a state not written: the cache may record crossings no one received, so it
        is dropped unwritten and nothing more is committed from it; a restart, from the committed offsets,
        derives and sends everything after them again (the same signal ids, which downstream drops); so does
        this worker if it goes on: with the guard reset, each partition is read again from its committed position."""
        self.states.forget()
        self.staged = {}  # a write in flight may yet fail: read from the table, which holds only what was delivered
        self.pending.clear()
        self.deliveries.clear()
        self.guard.reset()
        self.held.clear()
        self.last_arrival.clear()

    async def flush(self, wait: bool = True) -> None:
        """Snapshot what the batches so far changed, then in the background: await their signals, write every
        changed account once, commit the input positions covered. The agent goes on with the next batches
        meanwhile (`wait=False`); the next flush first waits for this one, so writes and commits stay in order."""
        async with self.lock:
            if self.closed:
                return
            await self._written()
            try:
                writes = list(self.states.changes())
            except BaseException:
                self._drop_unwritten()
                raise
            # until written, an account the cache lets go of is read back from this snapshot, not the table
            self.staged = {key: value for key, value, _partition in writes}
            deliveries, self.deliveries = self.deliveries, []
            pending, self.pending = self.pending, []
            positions = self.guard.positions({event.message.tp for _stream, event in pending})
            self.writing = asyncio.create_task(self._write(deliveries, writes, pending, positions), name="signals-flush")
            self.last_flush = asyncio.get_running_loop().time()
            if wait:
                await self._written()

    async def _write(
        self,
        deliveries: list[asyncio.Future[Any]],
        writes: list[tuple[str, bytes, int]],
        pending: list[tuple[StreamT, EventT]],
        positions: dict[TP, int],
    ) -> None:
        await asyncio.gather(*deliveries)  # no state recording a crossing reaches the changelog before its signal
        STATE_WRITES.inc(await self.table.write(self.sender, writes))
        await self.positions.commit(positions)
        for stream, event in pending:
            await stream.ack(event)  # Faust's own bookkeeping; the input topics' offsets are ours to commit

    async def _written(self) -> None:
        """Waits for the write in flight; if it failed, the cache (which holds what it did not write) is dropped."""
        writing, self.writing = self.writing, None
        if writing is None:
            return
        try:
            await writing
        except BaseException:
            self._drop_unwritten()
            raise

    async def _end_write_in_flight(self) -> None:
        """Before the worker lets go (shutdown, rebalance): a failed write is not raised, its records are processed again."""
        with contextlib.suppress(Exception):
            await self._written()

    async def flush_if_idle(self, interval: float) -> None:
        """Without new events the agent never loops: this writes and acknowledges what it left pending."""
        if self.writing is not None and self.writing.done():
            async with self.lock:
                await self._written()  # a failed background write surfaces here even when no batch follows
        if self.pending and self.flush_due(interval):
            await self.flush()

    async def resume_stalled(self, quiet_seconds: float) -> int:
        """Faust can skip every record of a partition at start-up, and then no later record reveals the hole: a
        partition whose log runs past the position with nothing arriving for `quiet_seconds` is read again."""
        async with self.lock:
            assigned = self.positions.assigned()
            if not assigned:
                return 0
            ends = await self.positions.end_offsets(assigned)
            now, resumed = asyncio.get_running_loop().time(), 0
            for partition in assigned:
                if partition in self.held or now - self.last_arrival.setdefault(partition, now) < quiet_seconds:
                    continue
                if partition not in self.guard.expected:
                    self.guard.start(partition, await self.positions.start_position(partition))
                position = self.guard.awaiting.get(partition, self.guard.expected[partition])
                if ends.get(partition, 0) > position:
                    await self.positions.go_back(partition, self.guard.go_back(partition))
                    self.last_arrival[partition] = now
                    resumed += 1
            return resumed

    async def close(self) -> None:
        """At shutdown, before the positions client closes: the write in flight ends (or fails, and is processed again
        after the restart), and no flush starts after it, since its commit could no longer land; what is pending then
        is processed again after the restart, from the committed positions."""
        async with self.lock:
            self.closed = True
            await self._end_write_in_flight()

    async def forget(self) -> None:
        """On a rebalance. What is pending is neither written nor committed: whichever worker owns its partition
        next processes it again from the committed position."""
        async with self.lock:
            await self._end_write_in_flight()
            if self.pending:
                log.warning("rebalance: %d records left unwritten, to be processed again", len(self.pending))
            self._drop_unwritten()

    def flush_due(self, interval: float) -> bool:
        return asyncio.get_running_loop().time() - self.last_flush >= interval


def _count_delivered(signals: list[Signal], delivered: asyncio.Future[Any]) -> None:
    if not delivered.cancelled() and delivered.exception() is None:
        for signal in signals:
            SIGNALS.labels(signal.type.value).inc()


def kafka_publisher(sender: RecordSender, topic: str) -> Publish:
    partitions = 0

    async def publish(signals: list[Signal]) -> list[Awaitable[Any]]:
        """Keyed by account and partitioned as Kafka's default partitioner would, in one batch per partition."""
        nonlocal partitions
        partitions = partitions or await sender.partition_count(topic)
        records = [(s.account_id.encode(), s.model_dump_json().encode(), partition_of(s.account_id, partitions)) for s in signals]
        return [future for future, _count in await sender.send(topic, records)]

    return publish


def create_app(
    settings: Settings,
    config: RadarConfig,
    publish: Publish | None = None,
    positions: Partitions | None = None,
    sender: RecordSender | None = None,
) -> faust.App:
    """`publish`, `positions` and `sender` replace Kafka (unit tests drive the agent with Faust's test context)."""
    topics = Topics.from_settings(settings)
    tuning = config.signals
    app = faust.App(
        settings.radar_signals_app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store=settings.radar_signals_store,
        **({"datadir": settings.radar_signals_data_dir} if settings.radar_signals_data_dir else {}),
        topic_partitions=settings.radar_partitions,
        topic_replication_factor=settings.radar_replication_factor,
        producer_acks=-1,
        # a flush writes thousands of states at once: fewer, larger produce batches (Faust's default is 16 KiB)
        producer_max_batch_size=512 * 1024,
        # the agent takes batches of thousands of records: the fetches and the stream's buffer keep up with it
        stream_buffer_maxsize=40_000,
        broker_max_poll_records=20_000,
        consumer_max_fetch_size=4 * 1024**2,
        # how soon a dead worker's partitions move to the survivors
        broker_session_timeout=settings.radar_signals_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.radar_signals_session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        web_bind=settings.radar_host,
        web_port=settings.radar_signals_port,
        web_host=settings.radar_host,
        autodiscover=False,
        key_serializer="json",
        value_serializer="json",
    )
    # acks off: Faust never commits these offsets; the worker commits them after the state covering them is written
    source = app.topic(
        topics.usage_events,
        topics.account_updates,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        acks=False,
    )
    # changelog keys and values are JSON, readable with any Kafka tool; the values are stored as encode_state wrote them
    states = app.tables.add(
        AccountTable(
            app,
            name="account-state",
            default=None,
            schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="json", value_serializer="raw"),
            # the store's own codec comes from these, not the schema: without them a state read back from the changelog
            # (recovery, standby copies) is decoded to a dict where the worker wrote bytes
            key_type=str,
            value_type=bytes,
            partitions=settings.radar_partitions,
            beacon=app.tables.beacon,
            options=ROCKSDB_OPTIONS,
        )
    )
    if positions is None:
        positions = KafkaPartitions(
            app, settings.kafka_bootstrap_servers, settings.radar_signals_app_id, {topics.usage_events, topics.account_updates}
        )
    sender = sender or FaustProducerSender(app)
    publish = publish or kafka_publisher(sender, topics.expansion_signals)
    worker = SignalsWorker(states, publish, topics, config, settings.radar_partitions, positions, sender)
    recovery_watch = RecoveryWatch(settings.radar_signals_recovery_stall_s)
    app.add_dependency(RecoveryWatchService(app, recovery_watch, positions))
    app.signals_worker = worker  # type: ignore[attr-defined]

    @app.on_before_shutdown.connect
    async def close_positions(app: faust.App, **kwargs: Any) -> None:
        await worker.close()
        await positions.close()

    @app.agent(source, concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(tuning.batch_size, within=tuning.batch_wait_seconds):
            await worker.handle(stream, list(events))
            if worker.flush_due(tuning.state_flush_seconds):
                await worker.flush(wait=False)

    @app.timer(tuning.state_flush_seconds)
    async def flush_when_idle() -> None:
        await worker.flush_if_idle(tuning.state_flush_seconds)

    @app.timer(STALL_CHECK_SECONDS)
    async def resume_stalled_partitions() -> None:
        if app.tables.recovery.completed.is_set() and not app.rebalancing:
            await worker.resume_stalled(STALL_CHECK_SECONDS)

    @app.on_partitions_revoked.connect
    async def forget_states(app: faust.App, revoked: set, **kwargs: Any) -> None:
        await worker.forget()

    @app.page("/v1/state/{account_id}")
    @app.table_route(table=states, match_info="account_id")
    async def account_state(web: Any, request: Any, account_id: str) -> Any:
        """The live per-account state (limits, this period's usage, thresholds spent), from the owning worker, every
        field shown (the table leaves out those at their defaults)."""
        state = states.stored(account_id)
        if state is None:
            return web.json({"detail": f"no state for account {account_id!r}"}, status=404)
        return web.bytes(orjson.dumps(dump_state(load_state(state))), content_type="application/json")

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the whole header passes as it is
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        body, status = recovery_watch.health()
        return web.json(body, status=status)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        checks = {
            "consumer_assigned": bool(app.consumer.assignment()) if app.consumer else False,
            "not_rebalancing": not app.rebalancing,
            "tables_recovered": app.tables.recovery.completed.is_set(),
        }
        ready = all(checks.values())
        return web.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    return app
