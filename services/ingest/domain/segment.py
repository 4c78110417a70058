"""Segment's HTTP tracking API into native events and account patches: a handler per call type (SEGMENT_CALLS)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from services.ingest.domain.config import SegmentConfig
from services.ingest.domain.errors import BatchRejected, FieldError
from services.ingest.domain.translation import (
    MAX_ID,
    MISSING,
    AccountPatch,
    Translation,
    add_event,
    apply_mapping,
    as_id,
    assign,
    check_size,
    reject_invalid,
    resolve,
)

SEGMENT_ROUTES = ("batch", "track", "identify", "group")
SEGMENT_IGNORED_TYPES = ("page", "screen", "alias")


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
    given = as_id(message.get("messageId"))
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
        account = as_id(resolve(message, path))
        if account is not None:
            return account
    return None


def translate_segment(messages: list[dict[str, Any]], config: SegmentConfig, now: datetime) -> Translation:
    """All or nothing: every message that maps but is bad is reported by index and field; then nothing is accepted."""
    out = Translation()
    errors: list[FieldError] = []
    for index, message in enumerate(messages):
        check_size(index, message, "message")
        kind = message.get("type")
        mid = message_id(message)
        if len(mid) > MAX_ID or "\x00" in mid:
            errors.append(FieldError(index, "messageId", f"at most {MAX_ID} characters, no NUL"))
            continue
        handle = SEGMENT_CALLS.get(kind) if isinstance(kind, str) else None
        if handle is None:
            errors.append(FieldError(index, "type", f"unknown call type {kind!r}; one of track, identify, group, page, screen, alias"))
            continue
        handle(index, mid, message, config, now, out, errors)
    reject_invalid(errors, len(messages), "messages")
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
    add_event(index, raw, sources, out, errors)


def _identify(
    index: int, mid: str, message: dict[str, Any], config: SegmentConfig, now: datetime, out: Translation, errors: list[FieldError]
) -> None:
    """Only an identify that names an account (a group) and an e-mail adds a user; any other is ignored."""
    account = _account_of(message, config)
    user_id = as_id(message.get("userId"))
    traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
    email = resolve(traits, config.user_traits.get("email", "email"))
    if account is None or user_id is None or email is MISSING:
        out.ignored += 1
        return
    user: dict[str, Any] = {"id": user_id, "email": email}
    team = resolve(traits, config.user_traits.get("team", "team"))
    if team is not MISSING:
        user["team"] = team
    raw = {"type": "user_added", "id": mid, "account_id": account, "timestamp": _event_time(message, now), "user": user}
    sources = {"user": "traits"}
    add_event(index, raw, sources, out, errors)


def _group(
    index: int, mid: str, message: dict[str, Any], config: SegmentConfig, _now: datetime, out: Translation, errors: list[FieldError]
) -> None:
    account = as_id(message.get("groupId"))
    if account is None or len(account) > MAX_ID or "\x00" in account:
        errors.append(FieldError(index, "groupId", f"a group call needs a groupId (1-{MAX_ID} characters): it is the account id"))
        return
    traits: dict[str, Any] = message["traits"] if isinstance(message.get("traits"), dict) else {}
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for target, path in config.group_traits.items():
        value = resolve(traits, path)
        if value is MISSING:
            continue
        if target == "domains" and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        assign(fields, target, value)
        sources[target.split(".", 1)[0] if target.startswith("owners.") else target] = f"traits.{path}"
    prefix = config.limit_trait_prefix
    if prefix:
        for name, value in traits.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                limits: dict[str, Any] = fields["limits"] if isinstance(fields.get("limits"), dict) else {}
                fields["limits"] = {**limits, name[len(prefix) :]: value}
                sources["limits"] = f"traits.{name}"
    out.accounts.append(AccountPatch(index, mid, account, fields, sources))


def _ignore(
    _index: int, _mid: str, _message: dict[str, Any], _config: SegmentConfig, _now: datetime, out: Translation, _errors: list[FieldError]
) -> None:
    out.ignored += 1


SegmentCall = Callable[[int, str, dict[str, Any], SegmentConfig, datetime, Translation, list[FieldError]], None]
SEGMENT_CALLS: dict[str, SegmentCall] = {"track": _track, "identify": _identify, "group": _group}
SEGMENT_CALLS.update(dict.fromkeys(SEGMENT_IGNORED_TYPES, _ignore))
