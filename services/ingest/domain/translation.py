"""What a Segment or CloudEvents request turns into (events and account patches), and the mapping rules both
sources share: dotted paths into the message, `set`/`from` mappings, and a group call merged into its account."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from services.ingest.domain.config import EventMapping
from services.ingest.domain.errors import BatchRejected, FieldError, event_errors, field_path
from services.ingest.domain.events import MAX_EVENT_BYTES
from shared.schemas import EVENT_ADAPTER, AccountUpsert, Event

MISSING = object()
MAX_ID = 200


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


def resolve(document: Any, path: str) -> Any:
    """A dotted path into nested objects; `MISSING` when any step is absent or null."""
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or current.get(part) is None:
            return MISSING
        current = current[part]
    return current


def assign(target: dict[str, Any], dotted: str, value: Any) -> None:
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
        assign(fields, target, value)
    for target, path in mapping.from_.items():
        value = resolve(message, path)
        if value is not MISSING:
            assign(fields, target, value)
            sources[target.split(".", 1)[0]] = path
    return {"type": mapping.type, **fields}, sources


def as_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value)
        return text if text else None
    return None


def add_event(index: int, raw: dict[str, Any], sources: dict[str, str], out: Translation, errors: list[FieldError]) -> None:
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


def reject_invalid(errors: list[FieldError], total: int, what: str) -> None:
    """All or nothing: any error refuses the whole request, naming how many of its `what` are bad."""
    if errors:
        bad = len({error.index for error in errors})
        raise BatchRejected(400, f"{bad} of {total} {what} are invalid; nothing was accepted", errors)


def check_size(index: int, raw: dict[str, Any], what: str) -> None:
    """413 for a message or CloudEvent over Segment's limit for one event, named by its index."""
    size = len(orjson.dumps(raw))
    if size > MAX_EVENT_BYTES:
        raise BatchRejected(
            413, f"{what} {index} is {size} bytes; the limit is {MAX_EVENT_BYTES}", [FieldError(index, f"({what})", "too large")]
        )


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
