"""The recovery watch: which changelog partitions count as stalled, and what it does about each (against stand-ins
for the Faust fields it reads; tests/integration/signals/test_worker.py runs it against a real stall on Kafka)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from time import monotonic
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from services.signals.adapters.recovery_watch import TRIES_BEFORE_UNHEALTHY, RecoveryWatch, Stall, stalled_partitions

A, B, C = (TP("app-account-state-changelog", partition) for partition in range(3))


def test_a_partition_is_stalled_once_quiet_for_the_time_since_its_last_record_or_the_start() -> None:
    remaining = {A: 5, B: 3, C: 0}
    received = {B: 95.0}
    assert stalled_partitions(remaining, received, {}, started_at=90.0, now=99.0, quiet_seconds=10) == []
    assert stalled_partitions(remaining, received, {}, started_at=90.0, now=100.0, quiet_seconds=10) == [Stall(A, 5, 10.0)]
    # C has nothing remaining: never stalled, however quiet
    stalls = stalled_partitions(remaining, received, {}, started_at=90.0, now=105.0, quiet_seconds=10)
    assert stalls == [Stall(A, 5, 15.0), Stall(B, 3, 10.0)]


def test_a_partition_just_tried_gets_the_quiet_time_again_before_the_next_try() -> None:
    assert stalled_partitions({A: 5}, {}, {A: 100.0}, started_at=90.0, now=105.0, quiet_seconds=10) == []
    assert stalled_partitions({A: 5}, {}, {A: 100.0}, started_at=90.0, now=110.0, quiet_seconds=10) == [Stall(A, 5, 20.0)]


@dataclass
class FakeConsumer:
    positions: dict[TP, int | None]
    resumed: list[TP] = field(default_factory=list)
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    def resume_partitions(self, tps: list[TP]) -> None:
        self.resumed += tps

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@dataclass
class FakeLog:
    """The changelog as a side reader sees it: the offsets that hold records (the rest are markers)."""

    offsets: dict[TP, set[int]]
    asked: list[tuple[TP, int, int]] = field(default_factory=list)

    async def has_records(self, partition: TP, start: int, end: int) -> bool:
        self.asked.append((partition, start, end))
        return any(start <= offset < end for offset in self.offsets.get(partition, set()))


def fake_app(consumer: FakeConsumer, offsets: dict[TP, int], highwaters: dict[TP, int], quiet_for: float) -> Any:
    recovery = SimpleNamespace(
        in_recovery=True,
        _recovery_started_at=monotonic() - quiet_for,
        _active_events_received_at={},
        active_offsets=Counter(offsets),
        active_highwaters=Counter(highwaters),
    )
    recovery.active_remaining = lambda: Counter({tp: highwaters[tp] - recovery.active_offsets[tp] for tp in highwaters})
    return SimpleNamespace(tables=SimpleNamespace(recovery=recovery), consumer=consumer)


async def test_a_partition_whose_remaining_offsets_hold_no_record_is_marked_recovered() -> None:
    """Offset 9 is a transaction's commit marker: Faust's recovery waits for it, the log holds no record there."""
    consumer, log = FakeConsumer({A: 10}), FakeLog({A: set(range(9))})
    app = fake_app(consumer, offsets={A: 8}, highwaters={A: 9}, quiet_for=60)
    done = await RecoveryWatch(quiet_seconds=30).check(app, log)
    assert log.asked == [(A, 9, 10)]
    assert app.tables.recovery.active_remaining() == Counter({A: 0})
    assert consumer.seeks == []
    assert len(done) == 1 and "holds no record there" in done[0]


async def test_a_partition_whose_records_were_fetched_and_dropped_is_fetched_again_from_the_next_offset() -> None:
    """Faust's consumer is already past the end (what it fetched was dropped): its position decides nothing."""
    consumer, log = FakeConsumer({A: 10, B: None}), FakeLog({A: set(range(10)), B: {0, 1, 2}})
    app = fake_app(consumer, offsets={A: 3, B: -1}, highwaters={A: 9, B: 2}, quiet_for=60)
    done = await RecoveryWatch(quiet_seconds=30).check(app, log)
    assert log.asked == [(A, 4, 10), (B, 0, 3)]
    assert consumer.resumed == [A, B]
    assert consumer.seeks == [(A, 4), (B, 0)]
    assert app.tables.recovery.active_remaining() == Counter({A: 6, B: 3})  # nothing marked
    assert all("fetching again" in line for line in done)


async def test_not_yet_quiet_long_enough_nothing_is_done() -> None:
    consumer, log = FakeConsumer({A: 4}), FakeLog({A: set(range(10))})
    app = fake_app(consumer, offsets={A: 3}, highwaters={A: 9}, quiet_for=5)
    assert await RecoveryWatch(quiet_seconds=30).check(app, log) == []
    assert log.asked == []
    assert consumer.seeks == []


async def test_a_partition_still_stuck_after_the_tries_makes_the_worker_unhealthy_until_a_new_recovery() -> None:
    consumer, log = FakeConsumer({A: 4}), FakeLog({A: set(range(10))})
    app = fake_app(consumer, offsets={A: 3}, highwaters={A: 9}, quiet_for=60)
    watch = RecoveryWatch(quiet_seconds=30)
    for tries in range(1, TRIES_BEFORE_UNHEALTHY + 1):
        watch.last_tried.clear()  # as if the quiet time had passed again since the last try
        await watch.check(app, log)
        assert watch.healthy is (tries < TRIES_BEFORE_UNHEALTHY)
    assert len(consumer.seeks) == TRIES_BEFORE_UNHEALTHY
    body, status = watch.health()
    assert status == 503 and body["status"] == "stuck"
    assert f"{A.topic}[0]" in body["detail"]
    app.tables.recovery._recovery_started_at = monotonic()  # a rebalance restarts recovery: a fresh start
    assert await watch.check(app, log) == []
    assert watch.health() == ({"status": "ok"}, 200)
    app.tables.recovery.in_recovery = False
    assert await watch.check(app, log) == [] and watch.tries == {}
