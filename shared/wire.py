"""The usage-event contract as msgspec Structs, for the signals worker's hot path: derived from `shared.schemas`.

msgspec validates while it parses, several times faster than Pydantic, and its Structs cost less to build and read
than models: the worker decodes every event it counts (~100k a second). The fields, types and constraints are read
off the Pydantic models, so the contract is still declared once; what this module adds is only how to decode it.

`decode_events` and `decode_event` accept exactly what `shared.schemas.EVENT_ADAPTER` accepts, value for value: a
record msgspec refuses (a numeric string, a date-only timestamp, any invalid event) is validated again by Pydantic,
which accepts its lax forms and words its refusals; tests/unit/shared/test_wire.py holds the two decoders to the same
answers. Some checks are made per record instead of per field, where they cost a tenth: ids may not hold NUL (a
JSON text can only spell one as an escape, so a record without `\\u0000` holds none); a time with more than six
digits of fraction is left to Pydantic, which truncates it where msgspec rounds; and timestamps are brought to
offset zero (naive means UTC) after the parse, not in a `__post_init__` called for every event.
"""

from __future__ import annotations

import operator
import re
import types
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AfterValidator, BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from shared.schemas import EVENT_ADAPTER, EVENT_MODELS, NO_NUL, Event, UserRef, _aware_utc

_SCALARS = (str, int, float, bool, datetime, date, type(None))


def _python_pattern(pattern: str) -> str:
    """Pydantic matches patterns with Rust's regex, where `$` is the end of the text; in Python's `re` it also
    matches before a final newline, which would let `"a@b.c\\n"` pass as an e-mail address."""
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    """Pydantic's field metadata as msgspec.Meta arguments. The NUL check and the UTC normalisation are made per
    record (`decode_events`); any other validator has no msgspec counterpart and is refused here, so a new one cannot
    be silently skipped."""
    meta: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            meta.update(_constraints(item.metadata))
        elif isinstance(item, annotated_types.MinLen):
            meta["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            meta["max_length"] = item.max_length
        elif isinstance(item, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt):
            name = type(item).__name__.lower()
            meta[name] = getattr(item, name)
        elif isinstance(item, AfterValidator) and item.func is _aware_utc:
            continue
        elif getattr(item, "pattern", None) == NO_NUL:
            continue
        elif getattr(item, "pattern", None) is not None:
            meta["pattern"] = _python_pattern(item.pattern)
        else:
            raise TypeError(f"shared.wire cannot express the constraint {item!r}")
    return meta


def _wire_type(annotation: Any, structs: dict[type[BaseModel], type[msgspec.Struct]]) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        meta = _constraints(metadata)
        return Annotated[_wire_type(inner, structs), msgspec.Meta(**meta)] if meta else _wire_type(inner, structs)
    if origin in (Union, types.UnionType):
        return Union[tuple(_wire_type(arg, structs) for arg in get_args(annotation))]  # noqa: UP007
    if origin is Literal or annotation in _SCALARS:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _struct_of(annotation, structs)
    raise TypeError(f"shared.wire cannot express the type {annotation!r}")


def _struct_of(model: type[BaseModel], structs: dict[type[BaseModel], type[msgspec.Struct]]) -> type[msgspec.Struct]:
    if model in structs:
        return structs[model]
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    tag: str | None = None
    for name, info in model.model_fields.items():
        if name == "type" and get_origin(info.annotation) is Literal:
            tag = get_args(info.annotation)[0]  # the union's discriminator: msgspec's tag
            continue
        wire = _wire_type(Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation, structs)
        if any(isinstance(item, AfterValidator) and item.func is _aware_utc for item in info.metadata) and name != "timestamp":
            raise TypeError(f"shared.wire normalises only `timestamp` to UTC, not {model.__name__}.{name}")
        fields.append((name, wire) if info.is_required() else (name, wire, info.get_default(call_default_factory=True)))
    namespace: dict[str, Any] = {"__module__": __name__}
    if model is UserRef:
        namespace["domain"] = property(lambda self: self.email.rsplit("@", 1)[1].lower())
    struct = msgspec.defstruct(
        model.__name__,
        fields,
        namespace=namespace,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        gc=False,  # events hold no cycles: the collector need not track the ~100k a second the worker makes
        tag_field="type" if tag else None,
        tag=tag,
    )
    structs[model] = struct
    return struct


STRUCTS: dict[type[BaseModel], type[msgspec.Struct]] = {}
for _model in EVENT_MODELS.values():
    _struct_of(_model, STRUCTS)

if TYPE_CHECKING:
    # a Struct has its model's fields and properties, so the type checker reads the Structs as the models
    from shared.schemas import (
        FeatureUsedEvent,
        GaugeEvent,
        IntegrationConnectedEvent,
        UsageEvent,
        UserAddedEvent,
        UserRemovedEvent,
    )
    from shared.schemas import UserRef as WireUserRef

    WireEvent = Event
else:
    # the Structs by name, as the signals rules use them (isinstance, attributes)
    UsageEvent, GaugeEvent, UserAddedEvent, UserRemovedEvent, FeatureUsedEvent, IntegrationConnectedEvent = (
        STRUCTS[EVENT_MODELS[kind]] for kind in ("usage", "gauge", "user_added", "user_removed", "feature_used", "integration_connected")
    )
    WireUserRef = STRUCTS[UserRef]
    WireEvent = Union[tuple(STRUCTS[model] for model in EVENT_MODELS.values())]  # noqa: UP007

_EVENT_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(WireEvent)
_EVENTS_DECODER: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[WireEvent])
_EVENT_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def from_model(model: BaseModel) -> Any:
    """A validated Pydantic event (or user) as its Struct, value for value: built, not validated again, since
    Python's `re` and Pydantic's regex differ at the edges (what `\\s` matches), and Pydantic has decided."""
    fields = {name: from_model(value) if isinstance(value, BaseModel) else value for name, value in model if name != "type"}
    return STRUCTS[type(model)](**fields)


def user_model(user: Any) -> UserRef:
    """A user Struct as the Pydantic model a Signal carries."""
    return UserRef(id=user.id, email=user.email, team=user.team)


_ZONE = operator.attrgetter("timestamp.tzinfo")
_ONLY_UTC = {UTC}


def _at_offset_zero(events: list[Any]) -> list[Any]:
    """As `shared.schemas._aware_utc`: naive means UTC, another offset is converted (same instant). msgspec gives
    `...Z` and `+00:00` the `UTC` singleton, so a usual record costs a set of its events' zones, built in C."""
    if set(map(_ZONE, events)) <= _ONLY_UTC:
        return events
    for event in events:
        at = event.timestamp
        if at.tzinfo is not UTC:
            msgspec.structs.force_setattr(event, "timestamp", at.replace(tzinfo=UTC) if at.utcoffset() is None else at.astimezone(UTC))
    return events


# what msgspec would read otherwise than the contract: a NUL in a text, a time past microseconds (two searches: an
# alternation would cost the regex its literal prefix, and four times as much)
_PAST_MICROSECONDS = re.compile(rb":\d\d\.\d{7}")


def _for_pydantic(value: bytes) -> bool:
    return b"\\u0000" in value or _PAST_MICROSECONDS.search(value) is not None


def decode_events(value: bytes) -> list[Any]:
    """A JSON array of events; raises pydantic.ValidationError naming each bad event's index and field."""
    if not _for_pydantic(value):
        try:
            return _at_offset_zero(_EVENTS_DECODER.decode(value))
        except msgspec.MsgspecError:
            pass
    return [from_model(event) for event in _EVENT_LIST_ADAPTER.validate_json(value)]


def decode_event(value: bytes) -> Any:
    """One event (a JSON object); raises pydantic.ValidationError, saying what and where, when it is not one."""
    if not _for_pydantic(value):
        try:
            return _at_offset_zero([_EVENT_DECODER.decode(value)])[0]
        except msgspec.MsgspecError:
            pass
    return from_model(EVENT_ADAPTER.validate_json(value))


__all__ = [
    "STRUCTS",
    "FeatureUsedEvent",
    "GaugeEvent",
    "IntegrationConnectedEvent",
    "UsageEvent",
    "UserAddedEvent",
    "UserRemovedEvent",
    "ValidationError",
    "WireEvent",
    "WireUserRef",
    "decode_event",
    "decode_events",
    "from_model",
    "user_model",
]
