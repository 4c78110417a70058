"""Pure request handling: size limits, validation with per-event errors, and duplicate folding."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from shared.schemas import EVENT_ADAPTER, Event

MAX_REQUEST_BYTES = 500 * 1024  # Segment's limit for a batch request
MAX_EVENT_BYTES = 32 * 1024  # Segment's limit for one event


@dataclass(frozen=True)
class FieldError:
    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass
class BatchRejected(Exception):
    """The whole batch is refused; `status` is 400 for bad content and 413 for size."""

    status: int
    message: str
    errors: list[FieldError] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        return {
            "error": "invalid_batch" if self.status == 400 else "too_large",
            "message": self.message,
            "errors": [error.as_dict() for error in self.errors],
        }


def _field_path(location: tuple[int | str, ...]) -> str:
    # pydantic puts the discriminator's value first in the location of a tagged union: drop it
    parts = [str(part) for part in location]
    return ".".join(parts[1:] if len(parts) > 1 else parts) or "(event)"


def parse_event_batch(body: bytes) -> list[Event]:
    """All or nothing: every bad event is reported with its index and field, then nothing is accepted."""
    if len(body) > MAX_REQUEST_BYTES:
        raise BatchRejected(413, f"request is {len(body)} bytes; the limit is {MAX_REQUEST_BYTES}")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchRejected(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BatchRejected(400, 'body must be an object {"events": [Event, ...]}', [FieldError(None, "events", "a list is required")])
    extra = sorted(set(document) - {"events"})
    if extra:
        raise BatchRejected(400, f"unknown top-level fields: {', '.join(extra)}")
    raw_events = document["events"]
    if not raw_events:
        raise BatchRejected(400, "the batch is empty", [FieldError(None, "events", "at least one event is required")])

    events: list[Event] = []
    errors: list[FieldError] = []
    for index, raw in enumerate(raw_events):
        if len(orjson.dumps(raw)) > MAX_EVENT_BYTES:
            raise BatchRejected(
                413,
                f"event {index} is larger than {MAX_EVENT_BYTES} bytes",
                [FieldError(index, "(event)", f"larger than {MAX_EVENT_BYTES} bytes")],
            )
        try:
            events.append(EVENT_ADAPTER.validate_python(raw))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                path = "type" if err["type"].startswith("union_tag") else _field_path(err["loc"])
                errors.append(FieldError(index, path, err["msg"]))
    if errors:
        bad = len({error.index for error in errors})
        raise BatchRejected(400, f"{bad} of {len(raw_events)} events are invalid; nothing was accepted", errors)
    return events


def split_new(events: list[Event], already_seen: set[str]) -> tuple[list[Event], int]:
    """Drop events whose id was accepted before or repeats earlier in this batch."""
    fresh: list[Event] = []
    seen = set(already_seen)
    for event in events:
        if event.id in seen:
            continue
        seen.add(event.id)
        fresh.append(event)
    return fresh, len(events) - len(fresh)
