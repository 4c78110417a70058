"""A produce that fails part-way leaves deliveries no one awaits: their later failure must not be logged as an
"exception was never retrieved" (it was answered already: a 503, a state not written)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from services.ingest.adapters import BrokerUnavailable, KafkaPublisher
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


async def test_ingest_publish_failing_part_way_leaves_no_unretrieved_delivery_failure() -> None:
    producer = ProducerFailingAt(fail_at=3)
    publisher = KafkaPublisher(producer, timeout_s=5)  # type: ignore[arg-type]
    events = [(f"account-{index}", b"{}") for index in range(40)]  # over all four partitions: four records

    with pytest.raises(BrokerUnavailable, match="KafkaTimeoutError"):
        await publisher.publish_events("usage-events", events)

    assert len(producer.deliveries) == 2
    assert await _failures_logged_once_abandoned(producer) == []


async def test_send_batches_failing_part_way_leaves_no_unretrieved_delivery_failure() -> None:
    producer = ProducerFailingAt(fail_at=2)
    records = [(None, b"{}", partition) for partition in range(4)]

    with pytest.raises(KafkaTimeoutError):
        await send_batches(producer, "signals", records)  # type: ignore[arg-type]

    assert len(producer.deliveries) == 1
    assert await _failures_logged_once_abandoned(producer) == []


async def test_the_check_sees_a_delivery_failure_no_one_retrieved() -> None:
    """The check itself can fail: a failed delivery nobody reads is reported to the loop's handler."""
    producer = ProducerFailingAt(fail_at=0)
    await producer.send("usage-events", b"{}")

    assert any("never retrieved" in message for message in await _failures_logged_once_abandoned(producer))
