"""Which of the records Faust hands the agent reach the rules, and when: each partition's in offset order, once,
with no hole (adapters/offsets.py), and a partition taken over applies no usage until its account updates are read
up to their end (a replay then meets the limits the first pass met, and emits the same crossings)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from faust.types import TP, EventT, StreamT

from services.signals.adapters.metrics import RECORDS
from services.signals.adapters.offsets import Admission, OffsetGuard
from services.signals.adapters.positions import Partitions
from shared.topics import Topics

log = logging.getLogger(__name__)

# usage records one partition may keep in memory while its account updates are read first
MAX_HELD_RECORDS = 20_000


@dataclass
class Hold:
    """A usage partition's records kept back until its account-updates partition reaches `end`. Bounded: past
    `MAX_HELD_RECORDS` it keeps nothing more, and the partition is read again from its position once released."""

    updates: TP
    end: int
    events: list[EventT] = field(default_factory=list)
    overflowed: bool = False


class Intake:
    """The admission of records, partition by partition; its caller (the worker) holds the lock around each call."""

    def __init__(self, topics: Topics, positions: Partitions) -> None:
        self.topics = topics
        self.positions = positions
        self.guard: OffsetGuard[TP] = OffsetGuard()
        # usage partitions waiting for their account updates (what arrives meanwhile is kept, in order)
        self.held: dict[TP, Hold] = {}
        self.last_arrival: dict[TP, float] = {}

    async def admitted(self, stream: StreamT, events: list[EventT]) -> list[EventT]:
        """The records the rules may see: each partition's in offset order, once, with no hole (adapters/offsets.py)."""
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

    async def resume_stalled(self, quiet_seconds: float) -> int:
        """Faust can skip every record of a partition at start-up, and then no later record reveals the hole: a
        partition whose log runs past the position with nothing arriving for `quiet_seconds` is read again."""
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

    def committable(self, partitions: set[TP]) -> dict[TP, int]:
        """The positions to commit once the state covering every record admitted from `partitions` is written."""
        return self.guard.positions(partitions)

    def reset(self) -> None:
        """Each partition is read again from its committed position: nothing admitted so far counts."""
        self.guard.reset()
        self.held.clear()
        self.last_arrival.clear()
