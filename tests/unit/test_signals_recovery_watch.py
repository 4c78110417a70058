"""The recovery watch: which changelog partitions count as stalled, and what it does about each (against stand-ins
for the Faust fields it reads; tests/integration/test_signals.py runs it against a real stall on Kafka)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from time import monotonic
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from services.signals.recovery_watch import TRIES_BEFORE_UNHEALTHY, RecoveryWatch, Stall, read_to_end, stalled_partitions

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


def test_read_to_end_only_when_the_consumer_is_past_the_last_offset_and_nothing_fetched_waits() -> None:
    assert read_to_end(position=8, last_offset=7, queued=False)
    assert not read_to_end(position=7, last_offset=7, queued=False)  # the record at 7 is still to come
    assert not read_to_end(position=8, last_offset=7, queued=True)  # fetched, not yet applied
    assert not read_to_end(position=None, last_offset=7, queued=False)


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


def fake_app(consumer: FakeConsumer, offsets: dict[TP, int], highwaters: dict[TP, int], quiet_for: float) -> Any:
    recovery = SimpleNamespace(
        in_recovery=True,
        _recovery_started_at=monotonic() - quiet_for,
        _active_events_received_at={},
        active_offsets=Counter(offsets),
        active_highwaters=Counter(highwaters),
    )
    recovery.active_remaining = lambda: Counter({tp: highwaters[tp] - recovery.active_offsets[tp] for tp in highwaters})
    tables = SimpleNamespace(recovery=recovery, changelog_queue=SimpleNamespace(empty=lambda: True))
    return SimpleNamespace(tables=tables, consumer=consumer)


async def test_a_partition_read_past_its_last_offset_is_marked_recovered() -> None:
    consumer = FakeConsumer({A: 10})
    app = fake_app(consumer, offsets={A: 8}, highwaters={A: 9}, quiet_for=60)
    done = await RecoveryWatch(quiet_seconds=30).check(app)
    assert app.tables.recovery.active_remaining() == Counter({A: 0})
    assert consumer.seeks == []
    assert len(done) == 1 and "nothing left to read" in done[0]


async def test_a_partition_behind_its_last_offset_is_resumed_and_fetched_again_from_the_next_offset() -> None:
    consumer = FakeConsumer({A: 4, B: None})
    app = fake_app(consumer, offsets={A: 3, B: -1}, highwaters={A: 9, B: 2}, quiet_for=60)
    done = await RecoveryWatch(quiet_seconds=30).check(app)
    assert consumer.resumed == [A, B]
    assert consumer.seeks == [(A, 4), (B, 0)]
    assert app.tables.recovery.active_remaining() == Counter({A: 6, B: 3})  # nothing marked
    assert all("fetching again" in line for line in done)


async def test_not_yet_quiet_long_enough_nothing_is_done() -> None:
    consumer = FakeConsumer({A: 4})
    app = fake_app(consumer, offsets={A: 3}, highwaters={A: 9}, quiet_for=5)
    assert await RecoveryWatch(quiet_seconds=30).check(app) == []
    assert consumer.seeks == []


async def test_a_partition_still_stuck_after_the_tries_makes_the_worker_unhealthy_until_a_new_recovery() -> None:
    consumer = FakeConsumer({A: 4})
    app = fake_app(consumer, offsets={A: 3}, highwaters={A: 9}, quiet_for=60)
    watch = RecoveryWatch(quiet_seconds=30)
    for tries in range(1, TRIES_BEFORE_UNHEALTHY + 1):
        watch.last_tried.clear()  # as if the quiet time had passed again since the last try
        await watch.check(app)
        assert watch.healthy is (tries < TRIES_BEFORE_UNHEALTHY)
    assert len(consumer.seeks) == TRIES_BEFORE_UNHEALTHY
    body, status = watch.health()
    assert status == 503 and body["status"] == "stuck"
    assert f"{A.topic}[0]" in body["detail"]
    app.tables.recovery._recovery_started_at = monotonic()  # a rebalance restarts recovery: a fresh start
    assert await watch.check(app) == []
    assert watch.health() == ({"status": "ok"}, 200)
    app.tables.recovery.in_recovery = False
    assert await watch.check(app) == [] and watch.tries == {}
