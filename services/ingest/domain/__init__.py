"""Pure request handling: size limits, content types, validation with per-event errors, and duplicate folding."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from shared.schemas import EVENT_ADAPTER, Event, EventBatch

MAX_REQUEST_BYTES = 500 * 1024  # Segment's limit for a batch request
MAX_EVENT_BYTES = 32 * 1024  # Segment's limit for one event
JSON_TYPES = ("application/json",)

_BATCH_ADAPTER: TypeAdapter[EventBatch] = TypeAdapter(EventBatch)


@dataclass(frozen=True)
class FieldError:
    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "message": self.message}


_ERROR_CODES = {400: "invalid_batch", 413: "too_large", 415: "unsupported_media_type"}


@dataclass
class BatchRejected(Exception):
    """The whole request is refused: 400 bad content, 413 too large, 415 wrong content type or encoding."""

    status: int
    message: str
    errors: list[FieldError] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        code = _ERROR_CODES.get(self.status, "rejected")
        # `code` as well as `error`: Segment's clients read `code` and `message` from an error answer
        return {"error": code, "code": code, "message": self.message, "errors": [error.as_dict() for error in self.errors]}


@dataclass(frozen=True)
class ParsedEvents:
    """Validated events and their canonical JSON (what goes to Kafka), in request order."""

    events: list[Event]
    payloads: list[bytes]


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_content_type(content_type: str | None, accepted: Sequence[str]) -> str:
    """415 naming what is accepted; returns the media type that matched."""
    kind = media_type(content_type)
    if kind not in accepted:
        got = f"'{kind}'" if kind else "no Content-Type"
        raise BatchRejected(415, f"{got} is not accepted here; send Content-Type: {' or '.join(accepted)}")
    return kind


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo gzip/deflate (Segment's clients may compress) without ever inflating past the request limit."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > MAX_REQUEST_BYTES:
            raise BatchRejected(413, f"request is {len(body)} bytes; the limit is {MAX_REQUEST_BYTES}")
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BatchRejected(415, f"Content-Encoding '{encoding}' is not supported; use gzip, deflate or none")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        plain = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
    except zlib.error as exc:
        raise BatchRejected(400, f"body is not valid {encoding} data: {exc}") from None
    if len(plain) > MAX_REQUEST_BYTES:
        raise BatchRejected(413, f"request is over {MAX_REQUEST_BYTES} bytes once decompressed; the limit is {MAX_REQUEST_BYTES}")
    if not inflater.eof:
        raise BatchRejected(400, f"body is truncated {encoding} data")
    return plain


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchRejected(400, f"body is not valid JSON: {exc}") from None


def field_path(location: Iterable[int | str]) -> str:
    # pydantic puts the discriminator's value first in the location of a tagged union: drop it
    parts = [str(part) for part in location]
    return ".".join(parts[1:] if len(parts) > 1 else parts) or "(event)"


def event_errors(index: int, exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(index, "type" if err["type"].startswith("union_tag") else field_path(err["loc"]), err["msg"])
        for err in exc.errors(include_url=False)
    ]


def check_event_size(index: int, raw: object) -> None:
    if len(orjson.dumps(raw)) > MAX_EVENT_BYTES:
        raise BatchRejected(
            413,
            f"event {index} is larger than {MAX_EVENT_BYTES} bytes",
            [FieldError(index, "(event)", f"larger than {MAX_EVENT_BYTES} bytes")],
        )


def serialize(events: list[Event], indexes: Sequence[int] | None = None) -> list[bytes]:
    """Canonical JSON per event; an event over Segment's 32 KB is refused (413) naming its index. The model's own
    serializer straight to bytes: the same output as `model_dump_json().encode()` at about half the cost."""
    payloads = [event.__pydantic_serializer__.to_json(event) for event in events]
    for position, payload in enumerate(payloads):
        if len(payload) > MAX_EVENT_BYTES:
            index = indexes[position] if indexes is not None else position
            raise BatchRejected(
                413,
                f"event {index} is larger than {MAX_EVENT_BYTES} bytes",
                [FieldError(index, "(event)", f"larger than {MAX_EVENT_BYTES} bytes")],
            )
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


def fresh_positions(ids: Sequence[str], already_seen: set[str]) -> list[int]:
    """Positions of ids neither accepted before nor repeated earlier in the request."""
    seen = set(already_seen)
    positions: list[int] = []
    for position, event_id in enumerate(ids):
        if event_id in seen:
            continue
        seen.add(event_id)
        positions.append(position)
    return positions
