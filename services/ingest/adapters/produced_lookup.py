"""Which event ids a topic already holds: the look a claim takes over from a lapsed one needs (see ProducedLookup)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from services.ingest.domain.errors import BrokerUnavailable
from shared.event_records import decode_events, partition_of


class ProducedLookup:
    """Which of some event ids a topic already holds: the ids a claim took over from one whose lease ran out. That
    claim's process may have died between Kafka's ack and the mark, and producing its events again would have
    signals count them twice once they are out of its window of recent ids per account. Rare (a crash, or an outcome
    never known), so a consumer of its own per look, reading only the partitions of those ids, from the old claim's
    time to what its produce could have taken (`span`)."""

    CLOCK_SKEW = timedelta(seconds=60)  # between the ingest process that claimed and the one that looks

    def __init__(self, producer: AIOKafkaProducer, consumer: Callable[[], AIOKafkaConsumer], timeout_s: float, span: timedelta) -> None:
        self._producer = producer  # its metadata: the topic's partition count, as the produce used it
        self._consumer = consumer
        self._timeout_s = timeout_s
        self._span = span

    async def find(self, topic: str, wanted: Mapping[str, str], claimed_at: Iterable[datetime]) -> set[str]:
        """`wanted`: event id -> account id; `claimed_at`: the times of the claims taken over."""
        times = sorted(claimed_at)
        since, until = times[0] - self.CLOCK_SKEW, times[-1] + self._span + self.CLOCK_SKEW
        consumer = self._consumer()
        try:
            async with asyncio.timeout(self._timeout_s):
                partitions = len(await self._producer.partitions_for(topic))
                await consumer.start()
                return await self._scan(consumer, topic, partitions, wanted, since, until)
        except TimeoutError as exc:
            raise BrokerUnavailable(f"Kafka did not answer the look for {len(wanted)} ids taken over from a lapsed claim") from exc
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka refused the look for ids taken over from a lapsed claim: {type(exc).__name__}") from exc
        finally:
            await consumer.stop()

    @staticmethod
    async def _scan(
        consumer: AIOKafkaConsumer, topic: str, partitions: int, wanted: Mapping[str, str], since: datetime, until: datetime
    ) -> set[str]:
        assigned = sorted({TopicPartition(topic, partition_of(account, partitions)) for account in wanted.values()})
        consumer.assign(assigned)
        starts = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in assigned})
        ends = await consumer.end_offsets(assigned)
        reading: dict[TopicPartition, int] = {}
        for tp in assigned:
            start = starts.get(tp)
            if start is not None and start.offset < ends[tp]:
                consumer.seek(tp, start.offset)
                reading[tp] = ends[tp]
        until_ms, found = int(until.timestamp() * 1000), set[str]()
        needles = [orjson.dumps(event_id) for event_id in wanted]  # a byte search first: most records hold none of them
        while reading:
            batches = await consumer.getmany(*reading, timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    if record.timestamp > until_ms:
                        reading.pop(tp, None)
                        break
                    if record.value is None or not any(needle in record.value for needle in needles):
                        continue
                    found.update(
                        event["id"] for event in decode_events(record.value) if isinstance(event, dict) and event.get("id") in wanted
                    )
            for tp in list(reading):
                if await consumer.position(tp) >= reading[tp]:
                    del reading[tp]
        return found
