"""Wires scoring: consumer of signals, account and plan updates and health events, producer of alerts, the database.

Health and satisfaction inputs (nps, csat, support_ticket, billing_issue, subscription_changed) arrive on
usage-events with everything else ingest accepts, grouped into records per partition (shared/event_records.py).
Scoring reads that topic too and drops a record with no health event by a byte search for the compact
`"type":"…"` key before any JSON parsing: no extra topic for ingest to dual-write, ordering per account kept
(same account, same partition), and the unwanted majority costs a scan.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.config import RadarConfig
from services.scoring import handlers, outcomes_service
from services.scoring.domain import HEALTH_EVENT_TYPES
from services.scoring.metrics import RECORDS
from services.scoring.repository import ScoringRepository
from shared.auth import KeyStore
from shared.consumer_loop import ConsumerWorker, UnreadableRecord, start_with_retry
from shared.db import create_engine, database_ready, sessionmaker
from shared.event_records import decode_events
from shared.kafka import make_consumer, make_producer
from shared.schemas import EVENT_ADAPTER, AccountUpdate, PlanUpdate, Signal
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)

# ingest writes events with pydantic's compact JSON; a quote inside a string value is escaped, so this
# sequence only ever matches the real "type" key. The full parse below still decides.
HEALTH_EVENT = re.compile(rb'"type":"(?:' + b"|".join(t.encode() for t in HEALTH_EVENT_TYPES) + rb')"')


@dataclass
class ScoringRuntime:
    settings: Settings
    config: RadarConfig
    topics: Topics
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    worker: ConsumerWorker
    keys: KeyStore
    producer_started: bool = False
    summary_task: asyncio.Task[None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def summary_webhook(self) -> str | None:
        """The owner's weekly summary goes where the notifier's default channel goes."""
        channel = self.settings.radar_slack_webhooks.get(self.config.notifier.slack.default_channel) or self.settings.slack_webhook_url
        return channel.get_secret_value() if channel else None

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[ScoringRepository]:
        async with self.sessions.begin() as session:
            yield ScoringRepository(session)

    async def handle(self, record: ConsumerRecord) -> None:
        """Account and plan updates are stored; health events rescore quietly; a signal is scored, stored,
        and its alert published when it is actionable."""
        try:
            if record.topic == self.topics.account_updates:
                await handlers.handle_account_update(self.unit_of_work, AccountUpdate.model_validate_json(record.value))
                RECORDS.labels("account_update", "processed").inc()
                return
            if record.topic == self.topics.plan_updates:
                await handlers.handle_plan_update(self.unit_of_work, PlanUpdate.model_validate_json(record.value))
                RECORDS.labels("plan_update", "processed").inc()
                return
            if record.topic == self.topics.usage_events:
                await self._handle_usage_record(record)
                return
            signal = Signal.model_validate_json(record.value)
        except (ValidationError, TypeError) as exc:
            raise UnreadableRecord(str(exc)[:300]) from exc
        alert = await handlers.handle_signal(self.unit_of_work, signal, self.config.scoring)
        if alert is not None:
            await self.producer.send_and_wait(
                self.topics.expansion_alerts, key=alert.account_id.encode(), value=alert.model_dump_json().encode()
            )
        RECORDS.labels("signal", "processed").inc()

    async def _handle_usage_record(self, record: ConsumerRecord) -> None:
        """A usage-events record holds one event or an array of them (shared/event_records.py); only health events
        matter here. Each is applied once by id, so a record retried after a failure part-way is harmless; bad
        events are named after the good ones are applied."""
        if record.value is None or not HEALTH_EVENT.search(record.value):
            RECORDS.labels("usage_event", "ignored").inc()
            return
        try:
            items = decode_events(record.value)
        except ValueError as exc:
            raise UnreadableRecord(str(exc)[:300]) from exc
        problems: list[str] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict) or item.get("type") not in HEALTH_EVENT_TYPES:
                RECORDS.labels("usage_event", "ignored").inc()
                continue
            try:
                event = EVENT_ADAPTER.validate_python(item)
            except ValidationError as exc:
                problems.append(f"event {index}: {str(exc)[:300]}")
                continue
            applied = await handlers.handle_health_event(self.unit_of_work, event, self.config.scoring)  # type: ignore[arg-type]
            if event.type == "subscription_changed":  # the revenue ledger; may win or lose an opportunity
                await outcomes_service.on_subscription_changed(self.sessions, event)  # type: ignore[arg-type]
            RECORDS.labels("health_event", "processed" if applied else "duplicate").inc()
        if problems:
            raise UnreadableRecord("; ".join(problems)[:600])

    async def start(self) -> None:
        await start_with_retry(self.producer.start, "kafka producer")
        self.producer_started = True
        await self.worker.start()
        if self.config.outcomes.summary_every_hours:
            self.summary_task = asyncio.create_task(
                outcomes_service.summary_every(self.sessions, self.config.outcomes, self.summary_webhook, self.stopping)
            )

    async def stop(self) -> None:
        self.stopping.set()
        if self.summary_task is not None:
            self.summary_task.cancel()
        await self.worker.stop()
        if self.producer_started:
            await self.producer.stop()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        return {"kafka": self.producer_started and self.worker.running, "database": await database_ready(self.engine)}


def _reject(record: ConsumerRecord, exc: Exception) -> None:
    RECORDS.labels("unknown", "rejected").inc()
    log.warning("skipping unreadable record %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)


def build(settings: Settings, config: RadarConfig) -> ScoringRuntime:
    topics = Topics.from_settings(settings)
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine)
    runtime: ScoringRuntime
    consumer = make_consumer(
        settings, settings.scoring_group, topics.account_updates, topics.plan_updates, topics.usage_events, topics.expansion_signals
    )

    async def handle(record: ConsumerRecord) -> None:
        await runtime.handle(record)

    runtime = ScoringRuntime(
        settings=settings,
        config=config,
        topics=topics,
        engine=engine,
        sessions=sessions,
        producer=make_producer(settings),
        worker=ConsumerWorker(consumer, handle, _reject),
        keys=KeyStore(sessions),
    )
    return runtime
