"""Native events (`POST /v1/events`): validation with per-event errors, and the canonical JSON that goes to Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from pydantic import TypeAdapter, ValidationError

from services.ingest.domain.errors import BatchRejected, FieldError, event_errors
from services.ingest.domain.request_body import MAX_REQUEST_BYTES, load_json
from shared.schemas import EVENT_ADAPTER, Event, EventBatch

MAX_EVENT_BYTES = 32 * 1024  # Segment's limit for one event

_BATCH_ADAPTER: TypeAdapter[EventBatch] = TypeAdapter(EventBatch)


@dataclass(frozen=True)
class ParsedEvents:
    """Validated events and their canonical JSON (what goes to Kafka), in request order."""

    events: list[Event]
    payloads: list[bytes]


def event_too_large(index: int) -> BatchRejected:
    return BatchRejected(
        413, f"event {index} is larger than {MAX_EVENT_BYTES} bytes", [FieldError(index, "(event)", f"larger than {MAX_EVENT_BYTES} bytes")]
    )


def check_event_size(index: int, raw: object) -> None:
    if len(orjson.dumps(raw)) > MAX_EVENT_BYTES:
        raise event_too_large(index)


def serialize(events: list[Event], indexes: Sequence[int] | None = None) -> list[bytes]:
    """Canonical JSON per event; an event over Segment's 32 KB is refused (413) naming its index. The model's own
    serializer straight to bytes: the same output as `model_dump_json().encode()` at about half the cost."""
    payloads = [event.__pydantic_serializer__.to_json(event) for event in events]
    for position, payload in enumerate(payloads):
        if len(payload) > MAX_EVENT_BYTES:
            raise event_too_large(indexes[position] if indexes is not None else position)
    return payloads


def parse_event_batch(body: bytes) -> list[Event]:
    return parse_native(body).events


def parse_native(body: bytes) -> ParsedEvents:
    """All or nothing. The whole body is validated in one pass (pydantic's Rust JSON parser); only a bad batch
    takes the slow path that names every bad event's index and field."""
    if len(body) > MAX_REQUEST_BYTES:
        raise BatchRejected(413, f"request is {len(body)} bytes; the limit is {MAX_REQUEST_BYTES}")
    try:
        events = _BATCH_ADAPTER.validate_json(body).events
    except ValidationError:
        _explain_bad_batch(body)
        raise  # _explain_bad_batch always raises BatchRejected; this is unreachable
    return ParsedEvents(events, serialize(events))


def _explain_bad_batch(body: bytes) -> None:
    document = load_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BatchRejected(400, 'body must be an object {"events": [Event, ...]}', [FieldError(None, "events", "a list is required")])
    extra = sorted(set(document) - {"events"})
    if extra:
        raise BatchRejected(400, f"unknown top-level fields: {', '.join(extra)}")
    raw_events = document["events"]
    if not raw_events:
        raise BatchRejected(400, "the batch is empty", [FieldError(None, "events", "at least one event is required")])
    if len(raw_events) > 10_000:
        raise BatchRejected(400, f"the batch has {len(raw_events)} events; at most 10000", [FieldError(None, "events", "too many")])
    errors: list[FieldError] = []
    for index, raw in enumerate(raw_events):
        check_event_size(index, raw)
        try:
            EVENT_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            errors.extend(event_errors(index, exc))
    bad = len({error.index for error in errors})
    raise BatchRejected(400, f"{bad} of {len(raw_events)} events are invalid; nothing was accepted", errors)
