"""The notifier's consumer: expansion-alerts and alert-actions in the notifier's group, each record parsed by its
topic's type and handed to that type's handler (handlers/records.py); unreadable records are logged and skipped."""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.notifier.handlers.records import HANDLERS, RecordContext
from shared.consumer_loop import ConsumerWorker, UnreadableRecord
from shared.kafka import make_consumer
from shared.schemas import Alert, AlertAction, Contract
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)


def record_types(topics: Topics) -> dict[str, type[Contract]]:
    """What each consumed topic carries."""
    return {topics.expansion_alerts: Alert, topics.alert_actions: AlertAction}


class Dispatcher:
    def __init__(self, types: dict[str, type[Contract]], context: RecordContext) -> None:
        self._types = types
        self._context = context

    async def __call__(self, record: ConsumerRecord) -> None:
        record_type = self._types[record.topic]
        try:
            message = record_type.model_validate_json(record.value)
        except (ValidationError, TypeError) as exc:
            raise UnreadableRecord(str(exc)[:300]) from exc
        await HANDLERS[record_type](self._context, message)


def _reject(record: ConsumerRecord, exc: Exception) -> None:
    log.warning("skipping unreadable record %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)


def consumer_worker(settings: Settings, context: RecordContext) -> ConsumerWorker:
    types = record_types(Topics.from_settings(settings))
    consumer = make_consumer(settings, settings.notifier_group, *types)
    return ConsumerWorker(consumer, Dispatcher(types, context), _reject)
