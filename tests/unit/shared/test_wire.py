"""The signals worker's msgspec decoder against the Pydantic contract it is derived from: the same fields, and for
any record the same answer (refused by both, or the same event value for value). Hypothesis builds records at the
edges where the two libraries differ (lax numbers, timestamp forms, regex corners, NUL, unknown fields)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.domain.events import serialize
from shared import wire
from shared.schemas import EVENT_ADAPTER, EVENT_MODELS, UserRef

pytestmark = pytest.mark.unit


def pydantic_answer(value: bytes, many: bool) -> object:
    """What the contract says of the record: the events (as Structs, for comparison) or a refusal."""
    try:
        if many:
            return [wire.from_model(event) for event in wire._EVENT_LIST_ADAPTER.validate_json(value)]
        return wire.from_model(EVENT_ADAPTER.validate_json(value))
    except ValidationError:
        return "refused"


def wire_answer(value: bytes, many: bool) -> object:
    try:
        return wire.decode_events(value) if many else wire.decode_event(value)
    except ValidationError:
        return "refused"


def msgspec_alone(value: bytes) -> object:
    """The fast decoder without the Pydantic fallback (and without the record-level NUL check)."""
    try:
        return wire._at_offset_zero([wire._EVENT_DECODER.decode(value)])[0]
    except msgspec.MsgspecError:
        return "refused"


def test_every_event_model_has_a_struct_with_its_fields_defaults_and_tag() -> None:
    for kind, model in EVENT_MODELS.items():
        struct = wire.STRUCTS[model]
        assert struct.__struct_config__.tag == kind
        assert struct.__struct_config__.tag_field == "type"
        fields = {name: info for name, info in model.model_fields.items() if name != "type"}
        wire_fields = {field.name: field for field in msgspec.inspect.type_info(struct).fields}
        assert set(wire_fields) == set(fields)
        for name, info in fields.items():
            assert wire_fields[name].required == info.is_required(), f"{kind}.{name}"
            if not info.is_required():
                assert wire_fields[name].default == info.default, f"{kind}.{name}"


def test_what_ingest_writes_is_read_by_msgspec_itself_not_the_fallback() -> None:
    """The point of the module: the canonical JSON (shared.schemas' serializer) never needs Pydantic."""
    raw = [
        {"id": "e1", "type": "usage", "account_id": "acme", "timestamp": "2026-11-10T12:00:00+02:00", "metric": "api_calls", "quantity": 5},
        {"id": "e2", "type": "gauge", "account_id": "acme", "timestamp": "2026-11-10T12:00:00", "metric": "storage_gb", "value": 1.5},
        {"id": "e3", "type": "user_added", "account_id": "acme", "timestamp": "2026-11-10", "user": {"id": "u", "email": "a@acme.com"}},
        {"id": "e4", "type": "feature_used", "account_id": "acme", "timestamp": 1_700_000_000, "feature": "sso", "gated": True},
        {"id": "e5", "type": "nps", "account_id": "acme", "timestamp": "2026-11-10T12:00:00.123456Z", "score": 9},
        {"id": "e6", "type": "subscription_changed", "account_id": "acme", "timestamp": "2026-11-10T12:00:00Z"}
        | {"arr_before": 10, "arr_after": 20, "reason": "upgrade"},
    ]
    models = [EVENT_ADAPTER.validate_python(item) for item in raw]
    record = b"[" + b",".join(serialize(models)) + b"]"
    decoded = wire._EVENTS_DECODER.decode(record)  # raises if msgspec refuses: no fallback here
    assert decoded == [wire.from_model(model) for model in models]
    assert all(event.timestamp.tzinfo is UTC for event in decoded)
    assert wire.decode_events(record) == decoded


def test_timestamps_are_brought_to_offset_zero_as_pydantic_does() -> None:
    for stamp in ("2026-11-10T12:00:00+05:30", "2026-11-10T12:00:00", "2026-11-10T12:00:00-00:00", "2026-11-10T06:30:00Z"):
        value = orjson.dumps({"id": "e", "type": "usage", "account_id": "a", "timestamp": stamp, "metric": "m", "quantity": 1})
        event = wire.decode_event(value)
        assert event.timestamp.tzinfo is UTC
        assert event.timestamp == EVENT_ADAPTER.validate_json(value).timestamp


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "a\x00b"),  # PostgreSQL text cannot hold NUL: refused without the per-field regex
        ("account_id", "\x00"),
        ("id", ""),
        ("id", "x" * 201),
        ("quantity", -1),
        ("quantity", "many"),
        ("quantity", None),
        ("metric", ""),
        ("timestamp", "yesterday"),
        ("unknown", 1),
        ("type", "usages"),
    ],
)
def test_both_refuse_a_bad_field_and_the_refusal_names_it(field: str, value: object) -> None:
    event = {"id": "e1", "type": "usage", "account_id": "a", "timestamp": "2026-11-10T12:00:00Z", "metric": "m", "quantity": 1}
    record = orjson.dumps([event, {**event, field: value}])
    assert pydantic_answer(record, many=True) == "refused"
    with pytest.raises(ValidationError) as refused:
        wire.decode_events(record)
    locations = [error["loc"] for error in refused.value.errors()]
    assert all(location[0] == 1 for location in locations), locations  # the second event, not the first
    assert any(field in map(str, location) for location in locations) or field == "type", locations


def test_an_email_with_a_final_newline_is_refused_as_pydantic_refuses_it() -> None:
    """Python's `$` matches before a final newline, Rust's (Pydantic's) does not: the derived pattern ends in \\Z."""
    value = orjson.dumps(
        {"id": "e", "type": "user_added", "account_id": "a", "timestamp": "2026-11-10T00:00:00Z", "user": {"id": "u", "email": "a@b.co\n"}}
    )
    assert pydantic_answer(value, many=False) == "refused"
    assert msgspec_alone(value) == "refused"
    assert wire_answer(value, many=False) == "refused"


def test_users_keep_their_domain_and_become_the_model_a_signal_carries() -> None:
    value = orjson.dumps(
        {
            "id": "e",
            "type": "user_added",
            "account_id": "a",
            "timestamp": "2026-11-10T00:00:00Z",
            "user": {"id": "u", "email": "Ann@Acme.COM"},
        }
    )
    event = wire.decode_event(value)
    assert event.user.domain == "acme.com" == EVENT_ADAPTER.validate_json(value).user.domain
    assert wire.user_model(event.user) == UserRef(id="u", email="Ann@Acme.COM")


# ----------------------------------------------------------------------------- the two decoders agree

EDGY_TEXT = st.text(
    alphabet=st.sampled_from(["a", "Z", "@", ".", " ", "\n", "\t", "\x00", "\x1c", "\x85", "\u2028", "é", "\\"]), max_size=6
)
NUMBERS = st.one_of(
    st.integers(-3, 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["5", "1e3", "-1", " 2", "inf", "NaN", "0x10", "", "1_000"]),
    st.booleans(),
    st.none(),
)
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8)), None])
STAMPS = st.one_of(
    st.builds(lambda at, tz: at.replace(tzinfo=tz).isoformat(), st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1)), OFFSETS),
    st.sampled_from(
        [
            "2026-11-10",
            "2026-11-10T12:00:00.1234567Z",
            "2026-11-10 12:00:00Z",
            "2026-11-10t12:00:00z",
            "2026-11-10T12:00Z",
            "2026-11-10T24:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-10T12:00:00+25:00",
            "2026-11-10T12:00:00.5+01:00",
            "20261110T120000Z",
        ]
    ),
    st.integers(-10, 4_000_000_000),
    st.floats(0, 4e9, allow_nan=False),
    st.text(max_size=4),
)
VALUES: st.SearchStrategy[Any] = st.one_of(EDGY_TEXT, NUMBERS, STAMPS, st.lists(EDGY_TEXT, max_size=2))


def mostly(valid: st.SearchStrategy[Any], edgy: st.SearchStrategy[Any] = VALUES) -> st.SearchStrategy[Any]:
    """A valid value nine times in ten: records with one or two odd fields, where the decoders could part."""
    return st.integers(0, 9).flatmap(lambda draw: edgy if draw == 0 else valid)


NAME = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)
AMOUNT = st.one_of(st.integers(0, 10**6), st.floats(0, 1e9))
USER = st.fixed_dictionaries(
    {"id": mostly(NAME), "email": mostly(st.sampled_from(["a@acme.com", "Ann.B@Sub.Acme.io"]), EDGY_TEXT.map(lambda t: f"a{t}@b{t}.co"))},
    optional={"team": mostly(st.one_of(NAME, st.none())), "extra": st.just(1)},
)
FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "usage": {"metric": NAME, "quantity": AMOUNT},
    "gauge": {"metric": NAME, "value": AMOUNT},
    "user_added": {"user": USER},
    "user_removed": {"user": USER},
    "feature_used": {"feature": NAME, "gated": st.booleans(), "user_id": st.one_of(NAME, st.none())},
    "integration_connected": {"integration": NAME},
    "nps": {"score": st.integers(0, 10)},
    "csat": {"score": st.floats(1, 5)},
    "support_ticket": {"priority": st.sampled_from(["low", "normal", "high", "urgent"]), "status": st.sampled_from(["open", "closed"])},
    "billing_issue": {"kind": NAME},
    "subscription_changed": {"arr_before": AMOUNT, "arr_after": AMOUNT, "plan": st.one_of(NAME, st.none()), "reason": st.just("upgrade")},
}
OPTIONAL = {"gated", "user_id", "plan"}


def event_of(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = {name: mostly(value) for name, value in FIELDS[kind].items()}
    return st.fixed_dictionaries(
        {
            "type": mostly(st.just(kind), st.sampled_from(["Usage", "", 1, None])),
            "id": mostly(NAME),
            "account_id": mostly(st.just("acme")),
            "timestamp": mostly(
                st.datetimes(
                    datetime(1971, 1, 1),
                    datetime(2100, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]) | st.none(),
                ).map(datetime.isoformat),
                STAMPS,
            ),
        }
        | {name: value for name, value in fields.items() if name not in OPTIONAL},
        optional={name: value for name, value in fields.items() if name in OPTIONAL} | {"bogus": VALUES},
    )


EVENTS = st.sampled_from(list(FIELDS)).flatmap(event_of)


def as_json(value: object) -> bytes:
    """The standard library's encoder: it takes integers past 64 bits, and writes text as UTF-8 (escaping controls)."""
    return json.dumps(value, ensure_ascii=False).encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_for_any_event_record_msgspec_and_pydantic_give_the_same_answer(event: dict[str, Any]) -> None:
    value = as_json(event)
    expected = pydantic_answer(value, many=False)
    assert wire_answer(value, many=False) == expected
    assert wire_answer(b"[" + value + b"]", many=True) == ([expected] if expected != "refused" else "refused")
    alone = msgspec_alone(value)
    if alone != "refused" and not wire._for_pydantic(value):
        assert alone == expected, "msgspec accepted what the contract reads otherwise"


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=4))
def test_for_any_grouped_record_the_answer_is_all_or_nothing_as_pydantic_gives_it(events: list[dict[str, Any]]) -> None:
    value = as_json(events)
    assert wire_answer(value, many=True) == pydantic_answer(value, many=True)


def test_an_event_that_is_not_a_struct_of_the_contract_is_refused_by_the_rules() -> None:
    """A Pydantic event handed to the rules would match none of their isinstance tests and change nothing, silently."""
    from services.signals.domain.apply import apply_event
    from services.signals.domain.config import Rules
    from services.signals.domain.state import empty_state

    model = EVENT_ADAPTER.validate_python(
        {"id": "e1", "type": "usage", "account_id": "a", "timestamp": "2026-11-10T12:00:00Z", "metric": "m", "quantity": 1}
    )
    with pytest.raises(TypeError, match="shared.wire"):
        apply_event(empty_state("a"), model, Rules())
