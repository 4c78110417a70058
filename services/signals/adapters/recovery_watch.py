"""A watch on Faust's table recovery, which can wait for ever for changelog records that never come.

Two causes, both seen on Kafka here. The changelog's last offsets may hold no record a consumer is ever given: the
commit markers a transactional producer writes (Faust looks for that only in its exactly-once mode, faust-streaming
#47). Or the records were fetched but never reached the recovery: after a rebalance, with Faust's consumer already
past the changelog's end and not one record received (7 of 110 runs of the joining-worker test, on asyncio's loop
and on uvloop; Faust's consumer drops what a fetch returned when the flow stops or the generation changes under it,
the likely path). Either way the worker stays unready and its partitions make no progress.

For a partition with changelog records remaining and none received for `quiet_seconds`, the watch reads the log
itself from the recovery's next offset: if no record lies there, the partition is marked recovered; otherwise the
consumer is resumed on it and sent back to that offset (a record already applied is skipped by Faust). One still
stuck after several such tries fails `/healthz`, so that an orchestrator restarts the worker.
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

from services.signals.adapters.positions import Partitions

log = logging.getLogger(__name__)

# tries (each after `quiet_seconds` more without a record) before a partition counts as stuck for good
TRIES_BEFORE_UNHEALTHY = 4
# how often the watch looks (more often when the quiet time is shorter, as in tests)
LOOK_EVERY_SECONDS = 5.0

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
        received_at = max(last_received.get(partition, started_at), started_at)
        if now - max(received_at, last_tried.get(partition, started_at)) >= quiet_seconds:
            stalls.append(Stall(partition, left, now - received_at))
    return stalls


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

    async def check(self, app: Any, log_reader: Partitions) -> list[str]:
        """One look at the app's recovery (Faust's own fields: it keeps no public view of them); what was done."""
        recovery = app.tables.recovery
        started_at = recovery._recovery_started_at
        if not recovery.in_recovery or started_at is None:
            self._begin(None)
            return []
        if started_at != self.started_at:  # a new recovery (a rebalance): what was tried before is moot
            self._begin(started_at)
        now = monotonic()
        stalls = stalled_partitions(
            recovery.active_remaining(), recovery._active_events_received_at, self.last_tried, started_at, now, self.quiet_seconds
        )
        done = []
        for stall in stalls:
            done.append(await self._unstick(app, log_reader, stall))
            self.tries[stall.partition] = self.tries.get(stall.partition, 0) + 1
            self.last_tried[stall.partition] = now
        return done

    def _begin(self, started_at: float | None) -> None:
        self.started_at = started_at
        self.tries.clear()
        self.last_tried.clear()

    async def _unstick(self, app: Any, log_reader: Partitions, stall: Stall) -> str:
        recovery, consumer, partition = app.tables.recovery, app.consumer, stall.partition
        last_offset, next_offset = recovery.active_highwaters[partition], recovery.active_offsets[partition] + 1
        position = await consumer.position(partition)  # for the log line: where Faust's consumer believes it is
        where = f"table recovery of {partition.topic}[{partition.partition}]: no record for {stall.quiet_for:.0f} s"
        where += f", {stall.remaining} remaining from offset {next_offset}, the consumer at offset {position}"
        if not await log_reader.has_records(partition, next_offset, last_offset + 1):
            recovery.active_offsets[partition] = last_offset  # Faust's recovery ends at its next idle check
            RECOVERY_STALLS.labels("no_records_left").inc()
            return f"{where}; the log holds no record there (transaction markers): recovered"
        consumer.resume_partitions([partition])
        await consumer.seek(partition, next_offset)
        RECOVERY_STALLS.labels("fetched_again").inc()
        return f"{where}; the log holds records there: fetching again from offset {next_offset}"


class RecoveryWatchService(Service):
    """Runs the watch beside the app from its start: Faust's own timers start only once the first recovery is done."""

    def __init__(self, app: Any, watch: RecoveryWatch, log_reader: Partitions) -> None:
        super().__init__()
        self.app = app
        self.watch = watch
        self.log_reader = log_reader
        self.interval = min(LOOK_EVERY_SECONDS, watch.quiet_seconds / 2)

    @Service.task
    async def _look(self) -> None:
        async for _sleep_time in self.itertimer(self.interval, name="signals-recovery-watch"):
            try:
                for done in await self.watch.check(self.app, self.log_reader):
                    log.warning("%s", done)
            except Exception:  # a broker that does not answer, say: the next look tries again; the worker goes on
                log.exception("the table recovery watch could not look at the recovery")
