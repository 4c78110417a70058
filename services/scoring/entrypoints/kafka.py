"""Scoring's consumer: account and plan updates, signals, health events and alert actions, each record parsed by its
topic into contracts that handlers.HANDLERS dispatches by type.

Health and satisfaction inputs (nps, csat, support_ticket, billing_issue, subscription_changed) arrive on
usage-events with everything else ingest accepts, grouped into records per partition (shared/event_records.py).
Scoring reads that topic too and drops a record with no health event by a byte search for the compact
`"type":"…"` key before any JSON parsing: no extra topic for ingest to dual-write, ordering per account kept
(same account, same partition), and the unwanted majority costs a scan.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.scoring.adapters.metrics import RECORDS
from services.scoring.domain.state import HEALTH_EVENT_TYPES
from services.scoring.handlers import HANDLERS, Context
from shared.consumer_loop import ConsumerWorker, UnreadableRecord
from shared.event_records import decode_events
from shared.kafka import make_consumer
from shared.schemas import EVENT_ADAPTER, AccountUpdate, AlertAction, Contract, PlanUpdate, Signal
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)

# ingest writes events with pydantic's compact JSON; a quote inside a string value is escaped, so this
# sequence only ever matches the real "type" key. The full parse below still decides.
HEALTH_EVENT = re.compile(rb'"type":"(?:' + b"|".join(t.encode() for t in HEALTH_EVENT_TYPES) + rb')"')


@dataclass
class Parsed:
    """A record's contracts, and what could not be read of it (named after the good ones are handled)."""

    items: list[Contract]
    problems: list[str] = field(default_factory=list)


Parser = Callable[[bytes | None], Parsed]


def one(contract: type[Contract]) -> Parser:
    """A record holding one JSON contract; an unreadable one is skipped (UnreadableRecord)."""

    def parse(value: bytes | None) -> Parsed:
        if value is None:
            raise UnreadableRecord(f"an empty record where a {contract.__name__} belongs")
        try:
            return Parsed([contract.model_validate_json(value)])
        except (ValidationError, TypeError) as exc:
            raise UnreadableRecord(str(exc)[:300]) from exc

    return parse


def health_events(value: bytes | None) -> Parsed:
    """A usage-events record holds one event or an array of them (shared/event_records.py); only health events
    matter here. Each is applied once by id, so a record retried after a failure part-way is harmless."""
    if value is None or not HEALTH_EVENT.search(value):
        RECORDS.labels("usage_event", "ignored").inc()
        return Parsed([])
    try:
        items = decode_events(value)
    except ValueError as exc:
        raise UnreadableRecord(str(exc)[:300]) from exc
    parsed = Parsed([])
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("type") not in HEALTH_EVENT_TYPES:
            RECORDS.labels("usage_event", "ignored").inc()
            continue
        try:
            parsed.items.append(EVENT_ADAPTER.validate_python(item))
        except ValidationError as exc:
            parsed.problems.append(f"event {index}: {str(exc)[:300]}")
    return parsed


def parsers(topics: Topics) -> dict[str, Parser]:
    """Every topic scoring consumes, with how its records read."""
    return {
        topics.account_updates: one(AccountUpdate),
        topics.plan_updates: one(PlanUpdate),
        topics.usage_events: health_events,
        topics.expansion_signals: one(Signal),
        topics.alert_actions: one(AlertAction),
    }


class RecordDispatcher:
    def __init__(self, topics: Topics, context: Context) -> None:
        self.parsers = parsers(topics)
        self.context = context

    async def __call__(self, record: ConsumerRecord) -> None:
        parsed = self.parsers[record.topic](record.value)
        for item in parsed.items:
            await HANDLERS[type(item)](self.context, item)
        if parsed.problems:
            raise UnreadableRecord("; ".join(parsed.problems)[:600])


def reject(record: ConsumerRecord, exc: Exception) -> None:
    RECORDS.labels("unknown", "rejected").inc()
    log.warning("skipping unreadable record %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)


def consumer_worker(settings: Settings, topics: Topics, context: Context) -> ConsumerWorker:
    dispatch = RecordDispatcher(topics, context)
    consumer = make_consumer(settings, settings.scoring_group, *dispatch.parsers)
    return ConsumerWorker(consumer, dispatch, reject)
