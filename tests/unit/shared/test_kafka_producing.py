"""A produce that fails part-way leaves deliveries no one awaits: their later failure must not be logged as an
"exception was never retrieved" (it was answered already: a 503, a state not written)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from services.ingest.adapters.producer import KafkaPublisher, record_positions
from services.ingest.domain.errors import BrokerUnavailable, OutcomeUnknown, Undelivered
from shared.event_records import group_events
from shared.kafka import send_batches

pytestmark = pytest.mark.unit


class UnretrievedFailures:
    """The loop's exception handler, as the asyncio logger would see what it is handed."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.messages.append(context["message"])


class ProducerFailingAt:
    """Hands out a delivery per send until the `fail_at`-th send, which raises as aiokafka's would on a full buffer."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.deliveries: list[asyncio.Future[Any]] = []

    def _next_delivery(self) -> asyncio.Future[Any]:
        if len(self.deliveries) + 1 == self.fail_at:
            raise KafkaTimeoutError("buffer full")
        delivery = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery

    async def partitions_for(self, _topic: str) -> set[int]:
        return {0, 1, 2, 3}

    async def send(self, _topic: str, value: bytes, key: bytes | None = None, partition: int | None = None) -> asyncio.Future[Any]:
        return self._next_delivery()

    def create_batch(self) -> Any:
        class Batch:
            def append(self, **_record: Any) -> object:
                return object()

        return Batch()

    async def send_batch(self, _batch: Any, _topic: str, partition: int) -> asyncio.Future[Any]:
        return self._next_delivery()


async def _failures_logged_once_abandoned(producer: ProducerFailingAt) -> list[str]:
    """The deliveries sent before the failure fail in turn, and are let go of."""
    assert producer.deliveries, "the produce failed before a delivery was handed out: nothing is tested"
    handler = UnretrievedFailures()
    asyncio.get_running_loop().set_exception_handler(handler)
    for delivery in producer.deliveries:
        delivery.set_exception(KafkaTimeoutError("expired in the accumulator"))
    producer.deliveries.clear()
    await asyncio.sleep(0)  # done callbacks run
    gc.collect()
    return handler.messages


EVENTS = [(f"account-{index}", b"{}") for index in range(40)]  # over all four partitions: four records


async def test_ingest_publish_failing_part_way_leaves_no_unretrieved_delivery_failure() -> None:
    """The records sent before the failure never settle within the bound: an unknown outcome, let go of."""
    producer = ProducerFailingAt(fail_at=3)
    publisher = KafkaPublisher(producer, timeout_s=0.05)

    with pytest.raises(OutcomeUnknown):
        await publisher.publish_events("usage-events", EVENTS)

    assert len(producer.deliveries) == 2
    assert await _failures_logged_once_abandoned(producer) == []


def _settle_soon(producer: ProducerFailingAt, after_s: float, outcomes: list[BaseException | None]) -> asyncio.Task[None]:
    """Settles the deliveries in the order they were handed out, `after_s` from now (past the produce timeout)."""

    async def settle() -> None:
        await asyncio.sleep(after_s)
        for delivery, outcome in zip(producer.deliveries, outcomes, strict=True):
            if outcome is None:
                delivery.set_result(None)
            else:
                delivery.set_exception(outcome)

    return asyncio.create_task(settle())


async def test_a_record_acknowledged_after_the_produce_timeout_is_a_success_not_a_503() -> None:
    """A 503 for it would have the client's retry produce it a second time."""
    producer = ProducerFailingAt(fail_at=0)
    publisher = KafkaPublisher(producer, timeout_s=0.05)
    settling = _settle_soon(producer, 0.08, [None] * 4)

    await publisher.publish_events("usage-events", EVENTS)
    await settling


async def test_records_kafka_refused_are_named_and_the_others_are_not() -> None:
    producer = ProducerFailingAt(fail_at=4)  # the fourth record is never sent
    publisher = KafkaPublisher(producer, timeout_s=0.05)
    settling = _settle_soon(producer, 0.08, [None, KafkaTimeoutError("expired"), None])
    records = group_events(EVENTS, 4)
    positions = record_positions(EVENTS, 4, records)

    with pytest.raises(Undelivered) as refused:
        await publisher.publish_events("usage-events", EVENTS)
    await settling

    assert refused.value.positions == set(positions[1]) | set(positions[3])
    assert sorted(position for record in positions for position in record) == list(range(len(EVENTS)))


async def test_nothing_delivered_is_a_plain_503() -> None:
    producer = ProducerFailingAt(fail_at=0)
    publisher = KafkaPublisher(producer, timeout_s=0.05)
    settling = _settle_soon(producer, 0.01, [KafkaTimeoutError("expired")] * 4)

    with pytest.raises(BrokerUnavailable, match="KafkaTimeoutError") as refused:
        await publisher.publish_events("usage-events", EVENTS)
    await settling

    assert not isinstance(refused.value, Undelivered)


async def test_send_batches_failing_part_way_leaves_no_unretrieved_delivery_failure() -> None:
    producer = ProducerFailingAt(fail_at=2)
    records = [(None, b"{}", partition) for partition in range(4)]

    with pytest.raises(KafkaTimeoutError):
        await send_batches(producer, "signals", records)

    assert len(producer.deliveries) == 1
    assert await _failures_logged_once_abandoned(producer) == []


async def test_the_check_sees_a_delivery_failure_no_one_retrieved() -> None:
    """The check itself can fail: a failed delivery nobody reads is reported to the loop's handler."""
    producer = ProducerFailingAt(fail_at=0)
    await producer.send("usage-events", b"{}")

    assert any("never retrieved" in message for message in await _failures_logged_once_abandoned(producer))
