"""CloudEvents 1.0 (structured and batch mode) into native events: validated by the CloudEvents SDK, then mapped."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse

from services.ingest.domain.config import CloudEventsConfig
from services.ingest.domain.errors import BatchRejected, FieldError
from services.ingest.domain.translation import MAX_ID, Translation, add_event, apply_mapping, check_size, reject_invalid

CLOUDEVENTS_STRUCTURED = "application/cloudevents+json"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"


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


def _fields(
    index: int, cloud_event: CloudEvent, config: CloudEventsConfig, out: Translation, errors: list[FieldError]
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The event's fields and where each came from: `data` itself under the native type prefix, else the type's
    mapping; None when the event is ignored or wrong (then in `errors`)."""
    event_type = cloud_event.get_type()
    data = cloud_event.get_data()
    if config.native_type_prefix and event_type.startswith(config.native_type_prefix):
        if not isinstance(data, dict):
            errors.append(FieldError(index, "data", "must be a JSON object with the event's fields"))
            return None
        clashes = sorted({"id", "type", "account_id", "timestamp"} & set(data))
        if clashes:
            errors.append(FieldError(index, f"data.{clashes[0]}", "set by the CloudEvent's attributes (id+source, type, subject, time)"))
            return None
        sources = {name: f"data.{name}" for name in data}
        sources["type"] = "type"
        return {**data, "type": event_type[len(config.native_type_prefix) :]}, sources
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
        return None
    return apply_mapping(mapping, {**cloud_event.get_attributes(), "data": data})


def translate_cloudevents(documents: list[Any], config: CloudEventsConfig, now: datetime) -> Translation:
    """Each CloudEvent is validated by the SDK, then mapped; all or nothing, errors named by index and attribute."""
    out = Translation()
    errors: list[FieldError] = []
    for index, raw in enumerate(documents):
        if not isinstance(raw, dict):
            errors.append(FieldError(index, "(event)", "a CloudEvent is a JSON object"))
            continue
        check_size(index, raw, "event")
        cloud_event = _sdk_validate(index, raw, errors)
        if cloud_event is None:
            continue
        mapped = _fields(index, cloud_event, config, out, errors)
        if mapped is None:
            continue
        fields, sources = mapped
        subject = cloud_event.get_subject()
        if not subject:
            errors.append(FieldError(index, "subject", "required: the account id"))
            continue
        raw_event = {
            **fields,
            "id": cloudevent_id(cloud_event.get_source(), cloud_event.get_id()),
            "account_id": subject,
            "timestamp": cloud_event.get_time() or now,
        }
        add_event(index, raw_event, sources, out, errors)
    reject_invalid(errors, len(documents), "CloudEvents")
    return out
