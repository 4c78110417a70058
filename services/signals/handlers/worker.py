"""The agent's body: each batch through the rules, its signals handed to the producer, and, once per flush, the
changed states written and the input positions they cover committed.

How it stays exactly-once in effect and fast:
- the agent takes events in batches (`noack_take`); Faust does not commit the input topics (acks off);
- every record passes the intake first (handlers/intake.py): each partition's records reach the rules in
  offset order, once, with no hole, and a partition taken over applies no usage before its account updates;
- a batch's signals are handed to the producer at once, and every delivery is awaited by the next flush, before
  any state is written: no state that records a crossing can reach the changelog ahead of the signal itself, and
  no batch waits for a broker round trip of its own;
- changed accounts are written to the table once per flush (`state_flush_seconds`), each to the changelog
  partition of its own source partition, one producer batch per partition, and only once Kafka has acknowledged
  those changelog records does the worker commit the input positions they cover (and the table take the states);
  that write runs while the agent goes on with the next batches, and the next flush waits for it, so writes and
  commits stay in order;
- each account's state keeps the input offset of the last record applied to it, so the records a crash makes Kafka
  redeliver (everything after the last commit) are skipped exactly where the written state already holds them.
  Re-emitted crossings carry the same signal ids, which downstream drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import Any

from faust.types import TP, EventT, StreamT

from services.signals.adapters.metrics import RECORDS, SIGNALS, STATE_WRITES
from services.signals.adapters.positions import Partitions
from services.signals.adapters.sender import Publish, RecordSender
from services.signals.adapters.table import AccountTable
from services.signals.domain.config import Rules
from services.signals.handlers.intake import Intake
from services.signals.handlers.records import AccountStates, Record, RecordKind, apply_batch
from shared.schemas import Signal
from shared.topics import Topics

log = logging.getLogger(__name__)


class SignalsWorker:
    """The agent's body, with the lock that keeps a flush from landing inside a batch."""

    def __init__(
        self,
        table: AccountTable,
        publish: Publish,
        topics: Topics,
        rules: Rules,
        partitions: int,
        positions: Partitions,
        sender: RecordSender,
    ) -> None:
        self.table = table
        self.sender = sender
        self.partitions = partitions
        self.publish = publish
        self.kinds = {topics.usage_events: RecordKind.EVENTS, topics.account_updates: RecordKind.ACCOUNT_UPDATE}
        self.rules = rules
        self.states = AccountStates(load=self._stored_state)
        self.staged: dict[str, bytes] = {}  # the states of the flush in flight, not yet in the table
        self.positions = positions
        self.intake = Intake(topics, positions)
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

    def record(self, event: EventT) -> Record:
        message = event.message
        return Record(
            kind=self.kinds[message.topic],
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
            admitted = await self.intake.admitted(stream, events)
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
        this worker if it goes on: with the intake reset, each partition is read again from its committed position."""
        self.states.forget()
        self.staged = {}  # a write in flight may yet fail: read from the table, which holds only what was delivered
        self.pending.clear()
        self.deliveries.clear()
        self.intake.reset()

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
            positions = self.intake.committable({event.message.tp for _stream, event in pending})
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
        """Partitions silent for `quiet_seconds` with records past their position are read again (handlers/intake.py)."""
        async with self.lock:
            return await self.intake.resume_stalled(quiet_seconds)

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
