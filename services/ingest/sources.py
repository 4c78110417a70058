"""Pure translation of Segment's tracking API and CloudEvents 1.0 into native events and account patches.

No I/O: the service layer dedupes, merges group traits into the stored account and publishes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse
from pydantic import ValidationError

from services.ingest.domain import MAX_EVENT_BYTES, BatchRejected, FieldError, event_errors, field_path
from services.ingest.domain.config import CloudEventsConfig, EventMapping, SegmentConfig
from shared.schemas import EVENT_ADAPTER, AccountUpsert, Event

_MISSING = object()
SEGMENT_ROUTES = ("batch", "track", "identify", "group")
SEGMENT_IGNORED_TYPES = ("page", "screen", "alias")
CLOUDEVENTS_STRUCTURED = "application/cloudevents+json"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
MAX_ID = 200


def resolve(document: Any, path: str) -> Any:
    """A dotted path into nested objects; `_MISSING` when any step is absent or null."""
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or current.get(part) is None:
            return _MISSING
        current = current[part]
    return current


def _assign(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[leaf] = value


def apply_mapping(mapping: EventMapping, message: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Event fields from a mapping, and for each field set from the message, the path it came from (for errors)."""
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for target, value in mapping.set.items():
        _assign(fields, target, value)
    for target, path in mapping.from_.items():
        value = resolve(message, path)
        if value is not _MISSING:
            _assign(fields, target, value)
            sources[target.split(".", 1)[0]] = path
    return {"type": mapping.type, **fields}, sources


def _as_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is _MISSING or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value)
        return text if text else None
    return None


def _add_event(index: int, raw: dict[str, Any], sources: dict[str, str], out: Translation, errors: list[FieldError]) -> None:
    """The mapped event joins the translation, or its errors name the request's own fields it came from."""
    try:
        event = EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        for error in event_errors(index, exc):
            head = error.field.split(".", 1)[0]
            where = sources.get(head)
            errors.append(FieldError(index, where or error.field, f"{error.message} (mapped to {error.field})" if where else error.message))
        return
    out.events.append(event)
    out.positions.append(index)


# ----------------------------------------------------------------------------- Segment


@dataclass
class AccountPatch:
    """A Segment group call: the traits it carries, mapped onto account fields (owners.* and limits.* nested)."""

    index: int
    message_id: str
    account_id: str
    fields: dict[str, Any]
    sources: dict[str, str]


@dataclass
class Translation:
    """What a request turns into: events (with their positions in the request), account patches, and the ignored."""

    events: list[Event] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    accounts: list[AccountPatch] = field(default_factory=list)
    ignored: int = 0


def segment_messages(document: Any, route: str) -> list[dict[str, Any]]:
    """`/v1/batch` takes `{"batch": [...], "sentAt", "context"?}`; the other routes take one message of their type."""
    if not isinstance(document, dict):
        raise BatchRejected(400, "body must be a JSON object")
    if route == "batch":
        batch = document.get("batch")
        if not isinstance(batch, list) or not batch:
            raise BatchRejected(
                400,
                'body must be {"batch": [message, ...]} with at least one message',
                [FieldError(None, "batch", "a non-empty list is required")],
            )
        shared_context = document.get("context") if isinstance(document.get("context"), dict) else {}
        messages = []
        for index, message in enumerate(batch):
            if not isinstance(message, dict):
                raise BatchRejected(400, f"message {index} is not an object", [FieldError(index, "(message)", "an object is required")])
            if shared_context:
                message = {**message, "context": {**shared_context, **(message.get("context") or {})}}
            if "sentAt" not in message and document.get("sentAt") is not None:
                message = {**message, "sentAt": document["sentAt"]}
            messages.append(message)
        return messages
    kind = document.get("type", route)
    if kind != route:
        raise BatchRejected(400, f"/v1/{route} takes {route} calls, not {kind!r}", [FieldError(0, "type", f"must be {route!r}")])
    return [{**document, "type": route}]


def message_id(message: dict[str, Any]) -> str:
    """`messageId` is the idempotency key; without one, a hash of the message makes an identical retry a duplicate."""
    given = _as_id(message.get("messageId"))
    if given is not None:
        return given
    stable = {key: value for key, value in message.items() if key not in ("sentAt", "receivedAt", "writeKey")}
    return "sha256:" + hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _event_time(message: dict[str, Any], now: datetime) -> Any:
    for key in ("timestamp", "originalTimestamp", "sentAt"):
        if message.get(key) is not None:
            return message[key]
    return now.isoformat()


def _account_of(message: dict[str, Any], config: SegmentConfig) -> str | None:
    for path in config.account_id_paths:
        account = _as_id(resolve(message, path))
        if account is not None:
            return account
    return None


def translate_segment(messages: list[dict[str, Any]], config: SegmentConfig, now: datetime) -> Translation:
    """All or nothing: every message that maps but is bad is reported by index and field; then nothing is accepted."""
    out = Translation()
    errors: list[FieldError] = []
    for index, message in enumerate(messages):
        size = len(orjson.dumps(message))
        if size > MAX_EVENT_BYTES:
            raise BatchRejected(
                413, f"message {index} is {size} bytes; the limit is {MAX_EVENT_BYTES}", [FieldError(index, "(message)", "too large")]
            )
        kind = message.get("type")
        mid = message_id(message)
        if len(mid) > MAX_ID or "\x00" in mid:
            errors.append(FieldError(index, "messageId", f"at most {MAX_ID} characters, no NUL"))
            continue
        if kind == "track":
            _track(index, mid, message, config, now, out, errors)
        elif kind == "identify":
            _identify(index, mid, message, config, now, out, errors)
        elif kind == "group":
            _group(index, mid, message, config, out, errors)
        elif kind in SEGMENT_IGNORED_TYPES:
            out.ignored += 1
        else:
            errors.append(FieldError(index, "type", f"unknown call type {kind!r}; one of track, identify, group, page, screen, alias"))
    if errors:
        bad = len({error.index for error in errors})
        raise BatchRejected(400, f"{bad} of {len(messages)} messages are invalid; nothing was accepted", errors)
    return out


def _track(
    index: int, mid: str, message: dict[str, Any], config: SegmentConfig, now: datetime, out: Translation, errors: list[FieldError]
) -> None:
    name = message.get("event")
    if not isinstance(name, str) or not name:
        errors.append(FieldError(index, "event", "a track call needs an event name"))
        return
    mapping = config.track.get(name)
    if mapping is None:
        if config.unmapped_track == "ignore":
            out.ignored += 1
        else:
            errors.append(FieldError(index, "event", f"no mapping for track event {name!r} (ingest.segment.track in the config)"))
        return
    account = _account_of(message, config)
    if account is None:
        errors.append(FieldError(index, config.account_id_paths[0], f"no account: set one of {', '.join(config.account_id_paths)}"))
        return
    fields, sources = apply_mapping(mapping, message)
    raw = {**fields, "id": mid, "account_id": account, "timestamp": _event_time(message, now)}
    _add_event(index, raw, sources, out, errors)


def _identify(
    index: int, mid: str, message: dict[str, Any], config: SegmentConfig, now: datetime, out: Translation, errors: list[FieldError]
) -> None:
    """Only an identify that names an account (a group) and an e-mail adds a user; any other is ignored."""
    account = _account_of(message, config)
    user_id = _as_id(message.get("userId"))
    traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
    email = resolve(traits, config.user_traits.get("email", "email"))
    if account is None or user_id is None or email is _MISSING:
        out.ignored += 1
        return
    user: dict[str, Any] = {"id": user_id, "email": email}
    team = resolve(traits, config.user_traits.get("team", "team"))
    if team is not _MISSING:
        user["team"] = team
    raw = {"type": "user_added", "id": mid, "account_id": account, "timestamp": _event_time(message, now), "user": user}
    sources = {"user": "traits"}
    _add_event(index, raw, sources, out, errors)


def _group(index: int, mid: str, message: dict[str, Any], config: SegmentConfig, out: Translation, errors: list[FieldError]) -> None:
    account = _as_id(message.get("groupId"))
    if account is None or len(account) > MAX_ID or "\x00" in account:
        errors.append(FieldError(index, "groupId", f"a group call needs a groupId (1-{MAX_ID} characters): it is the account id"))
        return
    traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for target, path in config.group_traits.items():
        value = resolve(traits, path)
        if value is _MISSING:
            continue
        if target == "domains" and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        _assign(fields, target, value)
        sources[target.split(".", 1)[0] if target.startswith("owners.") else target] = f"traits.{path}"
    prefix = config.limit_trait_prefix
    if prefix:
        for name, value in traits.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                limits = fields.get("limits") if isinstance(fields.get("limits"), dict) else {}
                fields["limits"] = {**limits, name[len(prefix) :]: value}
                sources["limits"] = f"traits.{name}"
    out.accounts.append(AccountPatch(index, mid, account, fields, sources))


def merge_account(current: dict[str, Any] | None, patch: AccountPatch) -> AccountUpsert:
    """Traits a group call leaves out keep their last declared value; owners and limits merge key by key."""
    base: dict[str, Any] = dict(current or {})
    base.pop("account_id", None)
    base.pop("updated_at", None)
    for key, value in patch.fields.items():
        if key in ("owners", "limits") and isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    base.setdefault("name", patch.account_id)
    try:
        return AccountUpsert.model_validate(base)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            path = field_path(("account", *err["loc"]))
            errors.append(FieldError(patch.index, patch.sources.get(path.split(".", 1)[0], path), f"{err['msg']} (account field {path})"))
        raise BatchRejected(400, f"group call {patch.index} does not make a valid account; nothing was accepted", errors) from None


# ----------------------------------------------------------------------------- CloudEvents


def cloudevents_documents(document: Any, batch: bool) -> list[Any]:
    if batch:
        if not isinstance(document, list) or not document:
            raise BatchRejected(400, "a batch (application/cloudevents-batch+json) is a non-empty JSON array of CloudEvents")
        return document
    if not isinstance(document, dict):
        raise BatchRejected(400, "a structured CloudEvent (application/cloudevents+json) is a JSON object")
    return [document]


def cloudevent_id(source: str, ident: str) -> str:
    """CloudEvents ids are unique per source, so the idempotency key is both; hashed when too long for an event id."""
    key = f"{source}#{ident}"
    return key if len(key) <= MAX_ID else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _sdk_validate(index: int, raw: dict[str, Any], errors: list[FieldError]) -> CloudEvent | None:
    attributes = dict(raw)
    data = attributes.pop("data", None)
    if "data_base64" in attributes:
        errors.append(FieldError(index, "data_base64", "binary data cannot be mapped to an event; send JSON in data"))
        return None
    if not isinstance(attributes.get("id"), str) or not attributes.get("id"):
        errors.append(FieldError(index, "id", "required: a non-empty string (the idempotency key, with source)"))
        return None
    if attributes.get("specversion") != "1.0":
        errors.append(FieldError(index, "specversion", "must be '1.0'"))
        return None
    if "time" in attributes:
        try:
            attributes["time"] = isoparse(attributes["time"]) if isinstance(attributes["time"], str) else None
            if attributes["time"] is None:
                raise ValueError
        except (ValueError, OverflowError):
            errors.append(FieldError(index, "time", "must be an RFC 3339 timestamp"))
            return None
    try:
        return CloudEvent(attributes, data)
    except CloudEventValidationError as exc:
        for attribute, problems in exc.errors.items():
            errors.append(FieldError(index, attribute, "; ".join(str(problem) for problem in problems)))
    except (TypeError, ValueError, AttributeError) as exc:
        errors.append(FieldError(index, "(event)", f"not a valid CloudEvent: {exc}"))
    return None


def translate_cloudevents(documents: list[Any], config: CloudEventsConfig, now: datetime) -> Translation:
    """Each CloudEvent is validated by the SDK, then mapped; all or nothing, errors named by index and attribute."""
    out = Translation()
    errors: list[FieldError] = []
    for index, raw in enumerate(documents):
        if not isinstance(raw, dict):
            errors.append(FieldError(index, "(event)", "a CloudEvent is a JSON object"))
            continue
        size = len(orjson.dumps(raw))
        if size > MAX_EVENT_BYTES:
            raise BatchRejected(
                413, f"event {index} is {size} bytes; the limit is {MAX_EVENT_BYTES}", [FieldError(index, "(event)", "too large")]
            )
        cloud_event = _sdk_validate(index, raw, errors)
        if cloud_event is None:
            continue
        event_type = cloud_event.get_type()
        subject = cloud_event.get_subject()
        data = cloud_event.get_data()
        if config.native_type_prefix and event_type.startswith(config.native_type_prefix):
            if not isinstance(data, dict):
                errors.append(FieldError(index, "data", "must be a JSON object with the event's fields"))
                continue
            clashes = sorted({"id", "type", "account_id", "timestamp"} & set(data))
            if clashes:
                errors.append(
                    FieldError(index, f"data.{clashes[0]}", "set by the CloudEvent's attributes (id+source, type, subject, time)")
                )
                continue
            fields: dict[str, Any] = {**data, "type": event_type[len(config.native_type_prefix) :]}
            sources = {name: f"data.{name}" for name in data}
            sources["type"] = "type"
        else:
            mapping = config.types.get(event_type)
            if mapping is None:
                if config.unmapped == "ignore":
                    out.ignored += 1
                else:
                    errors.append(
                        FieldError(
                            index,
                            "type",
                            f"no mapping for type {event_type!r}: use {config.native_type_prefix}<event type>"
                            " or map it under ingest.cloudevents.types",
                        )
                    )
                continue
            fields, sources = apply_mapping(mapping, {**cloud_event.get_attributes(), "data": data})
        if not subject:
            errors.append(FieldError(index, "subject", "required: the account id"))
            continue
        time = cloud_event.get_time() or now
        raw_event = {
            **fields,
            "id": cloudevent_id(cloud_event.get_source(), cloud_event.get_id()),
            "account_id": subject,
            "timestamp": time,
        }
        _add_event(index, raw_event, sources, out, errors)
    if errors:
        bad = len({error.index for error in errors})
        raise BatchRejected(400, f"{bad} of {len(documents)} CloudEvents are invalid; nothing was accepted", errors)
    return out
