"""A request Kafka took only part of: the ids it refused are released before the claim is marked, so the client's
retry produces exactly those again and finds the rest duplicates; an undecided produce leaves the claim to its lease;
a mark the database refuses after Kafka's ack is a success, marked later."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.ingest.adapters.dedupe_store import DedupeStore
from services.ingest.domain.claims import Claim
from services.ingest.domain.errors import BrokerUnavailable, OutcomeUnknown, PartlyDelivered

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


class RecordingStore(DedupeStore):
    """The claim steps recorded instead of run against a database."""

    def __init__(self, failing_marks: int = 0) -> None:
        super().__init__(SimpleNamespace(dialect=SimpleNamespace(name="postgresql")), timedelta(days=7), timedelta(seconds=30))
        self.steps: list[tuple[str, list[str]]] = []
        self.failing_marks = failing_marks

    async def claim(self, items: Any, key_id: int | None = None, now: datetime | None = None) -> Claim:
        return Claim([event_id for event_id, _account in items], set(), set(), NOW, claim_id=7)

    async def release(self, claim: Claim) -> None:
        self.steps.append(("release", claim.claimed))

    async def mark_produced(self, claim: Claim) -> None:
        if self.failing_marks:
            self.failing_marks -= 1
            self.steps.append(("mark failed", claim.claimed))
            raise BrokerUnavailable("the database did not answer: ConnectionRefusedError")
        self.steps.append(("mark", claim.claimed))


ITEMS = [("e1", "a"), ("e2", "b"), ("e3", "c")]


async def test_refused_ids_are_released_before_the_rest_is_marked_produced() -> None:
    store = RecordingStore()
    with pytest.raises(PartlyDelivered):
        async with store.holding(ITEMS):
            raise PartlyDelivered(["e2"], BrokerUnavailable("NotLeaderForPartitionError"))

    assert store.steps == [("release", ["e2"]), ("mark", ["e1", "e2", "e3"])]


async def test_an_undecided_produce_neither_releases_nor_marks() -> None:
    store = RecordingStore()
    with pytest.raises(OutcomeUnknown):
        async with store.holding(ITEMS):
            raise OutcomeUnknown("1 record neither delivered nor failed")

    assert store.steps == []


async def test_a_plain_failure_releases_every_id() -> None:
    store = RecordingStore()
    with pytest.raises(BrokerUnavailable):
        async with store.holding(ITEMS):
            raise BrokerUnavailable("KafkaTimeoutError")

    assert store.steps == [("release", ["e1", "e2", "e3"])]


async def test_a_mark_failing_after_kafka_acknowledged_is_a_success_and_is_retried() -> None:
    """The events are in Kafka: a 503 would have the client produce them again once the lease ran out."""
    store = RecordingStore(failing_marks=1)

    async with store.holding(ITEMS):
        pass
    await asyncio.wait_for(asyncio.gather(*store._late_marks), timeout=5)

    assert store.steps == [("mark failed", ["e1", "e2", "e3"]), ("mark", ["e1", "e2", "e3"])]
