"""A watch on Faust's table recovery, which can wait for ever for changelog records that never come.

Two causes are known. The changelog's last offsets may hold no record a consumer is ever given: the commit markers
a transactional producer writes (Faust looks for that only in its exactly-once mode, faust-streaming #47). Or the
fetch for a partition stops after a rebalance (faust-streaming #21, #74). Either way the worker stays unready, its
partitions make no progress, and nothing says why.

For a partition with changelog records remaining and none received for `quiet_seconds`: when the consumer has
already read past the partition's last offset, nothing remains to be read, and the partition is marked recovered;
otherwise it is resumed and fetched again from its next offset (a record already applied is skipped by Faust).
One that is still stuck after several such tries fails `/healthz`, so that an orchestrator restarts the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from time import monotonic  # the clock Faust's recovery stamps its events with
from typing import Any

from faust.types import TP
from mode import Service
from prometheus_client import Counter

log = logging.getLogger(__name__)

# tries (each after `quiet_seconds` more without a record) before a partition counts as stuck for good
TRIES_BEFORE_UNHEALTHY = 4

RECOVERY_STALLS = Counter(
    "radar_signals_recovery_stalls",
    "Changelog partitions whose table recovery received no record for the quiet time while some remained, by what the watch did",
    ["action"],
)


@dataclass(frozen=True)
class Stall:
    partition: TP
    remaining: int
    quiet_for: float


def stalled_partitions(
    remaining: Mapping[TP, int],
    last_received: Mapping[TP, float],
    last_tried: Mapping[TP, float],
    started_at: float,
    now: float,
    quiet_seconds: float,
) -> list[Stall]:
    """The partitions with records remaining and nothing received (nor tried) for `quiet_seconds`, in order."""
    stalls = []
    for partition, left in sorted(remaining.items()):
        if left <= 0:
            continue
        quiet_since = max(last_received.get(partition, started_at), last_tried.get(partition, started_at))
        if now - quiet_since >= quiet_seconds:
            stalls.append(Stall(partition, left, now - max(last_received.get(partition, started_at), started_at)))
    return stalls


def read_to_end(position: int | None, last_offset: int, queued: bool) -> bool:
    """Whether nothing of the partition remains to be read: the consumer's next offset lies past its last one
    (what is left is markers, not records) and no fetched record waits to be applied."""
    return position is not None and position > last_offset and not queued


@dataclass
class RecoveryWatch:
    """What the watch did per partition in the current recovery (a recovery that ends or restarts forgets it)."""

    quiet_seconds: float
    started_at: float | None = None
    tries: dict[TP, int] = field(default_factory=dict)
    last_tried: dict[TP, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(count < TRIES_BEFORE_UNHEALTHY for count in self.tries.values())

    def health(self) -> tuple[dict[str, str], int]:
        """What `/healthz` answers: a worker whose recovery is stuck for good is restarted by its orchestrator."""
        if self.healthy:
            return {"status": "ok"}, 200
        stuck = [f"{tp.topic}[{tp.partition}]" for tp, count in sorted(self.tries.items()) if count >= TRIES_BEFORE_UNHEALTHY]
        detail = f"table recovery has received no record for {', '.join(stuck)} after {TRIES_BEFORE_UNHEALTHY} tries to fetch again"
        return {"status": "stuck", "detail": detail}, 503

    async def check(self, app: Any) -> list[str]:
        """One look at the app's recovery (Faust's own fields: it keeps no public view of them); what was done."""
        recovery = app.tables.recovery
        started_at = recovery._recovery_started_at
        if not recovery.in_recovery or started_at is None:
            self.started_at = None
            self.tries.clear()
            self.last_tried.clear()
            return []
        if started_at != self.started_at:  # a new recovery (a rebalance): what was tried before is moot
            self.started_at = started_at
            self.tries.clear()
            self.last_tried.clear()
        now = monotonic()
        stalls = stalled_partitions(
            recovery.active_remaining(), recovery._active_events_received_at, self.last_tried, started_at, now, self.quiet_seconds
        )
        done = []
        for stall in stalls:
            done.append(await self._unstick(app, stall))
            self.tries[stall.partition] = self.tries.get(stall.partition, 0) + 1
            self.last_tried[stall.partition] = now
        return done

    async def _unstick(self, app: Any, stall: Stall) -> str:
        recovery, consumer, partition = app.tables.recovery, app.consumer, stall.partition
        last_offset = recovery.active_highwaters[partition]
        position = await consumer.position(partition)
        where = f"table recovery of {partition.topic}[{partition.partition}]: no record for {stall.quiet_for:.0f} s"
        where += f", {stall.remaining} remaining"
        if read_to_end(position, last_offset, queued=not app.tables.changelog_queue.empty()):
            recovery.active_offsets[partition] = last_offset  # Faust's recovery ends at its next idle check
            RECOVERY_STALLS.labels("read_to_end").inc()
            return f"{where}; the consumer is at offset {position}, past the last ({last_offset}): nothing left to read, recovered"
        next_offset = recovery.active_offsets[partition] + 1
        consumer.resume_partitions([partition])
        await consumer.seek(partition, next_offset)
        RECOVERY_STALLS.labels("fetched_again").inc()
        return f"{where}; the consumer is at offset {position}: fetching again from offset {next_offset}"


class RecoveryWatchService(Service):
    """Runs the watch beside the app from its start: Faust's own timers start only once the first recovery is done."""

    def __init__(self, app: Any, watch: RecoveryWatch, interval: float) -> None:
        super().__init__()
        self.app = app
        self.watch = watch
        self.interval = interval

    @Service.task
    async def _look(self) -> None:
        async for _sleep_time in self.itertimer(self.interval, name="signals-recovery-watch"):
            for done in await self.watch.check(self.app):
                log.warning("%s", done)
