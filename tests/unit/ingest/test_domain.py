import orjson
import pytest

from services.ingest.domain.claims import split_new
from services.ingest.domain.errors import BatchRejected
from services.ingest.domain.events import MAX_EVENT_BYTES, parse_event_batch
from services.ingest.domain.request_body import MAX_REQUEST_BYTES
from shared.schemas import UsageEvent


def body(*events: dict) -> bytes:
    return orjson.dumps({"events": list(events)})


GOOD = {"id": "e1", "type": "usage", "account_id": "acme", "timestamp": "2026-11-10T12:00:00Z", "metric": "api_calls", "quantity": 5}


def test_a_valid_batch_parses_every_event_type() -> None:
    events = parse_event_batch(
        body(
            GOOD,
            {
                "id": "e2",
                "type": "user_added",
                "account_id": "acme",
                "timestamp": "2026-11-10T12:00:00",
                "user": {"id": "u", "email": "a@acme.com"},
            },
            {
                "id": "e3",
                "type": "gauge",
                "account_id": "acme",
                "timestamp": "2026-11-10T12:00:00+02:00",
                "metric": "storage_gb",
                "value": 3,
            },
        )
    )
    assert [type(e).__name__ for e in events] == ["UsageEvent", "UserAddedEvent", "GaugeEvent"]
    assert events[2].timestamp.utcoffset().total_seconds() == 0 and events[2].timestamp.hour == 10


def test_every_bad_event_is_named_by_index_and_field() -> None:
    with pytest.raises(BatchRejected) as caught:
        parse_event_batch(
            body(GOOD, {**GOOD, "id": "e2", "quantity": -1}, {**GOOD, "id": "e3", "type": "nope"}, {**GOOD, "timestamp": "soon"})
        )
    rejected = caught.value
    assert rejected.status == 400
    assert {(e.index, e.field) for e in rejected.errors} == {(1, "quantity"), (2, "type"), (3, "timestamp")}
    assert "3 of 4 events are invalid" in rejected.message


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(BatchRejected) as caught:
        parse_event_batch(body({**GOOD, "qty": 3}))
    assert [(e.index, e.field) for e in caught.value.errors] == [(0, "qty")]


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"events": {}}', b'{"events": []}', b'{"events": [], "x": 1}'])
def test_malformed_bodies_get_a_400_that_says_why(raw: bytes) -> None:
    with pytest.raises(BatchRejected) as caught:
        parse_event_batch(raw)
    assert caught.value.status == 400 and caught.value.message


def test_size_limits_are_segments() -> None:
    with pytest.raises(BatchRejected) as too_big:
        parse_event_batch(b" " * (MAX_REQUEST_BYTES + 1))
    assert too_big.value.status == 413
    with pytest.raises(BatchRejected) as big_event:
        parse_event_batch(body(GOOD, {**GOOD, "metric": "m" * MAX_EVENT_BYTES}))
    assert big_event.value.status == 413 and big_event.value.errors[0].index == 1


def test_duplicates_are_folded_within_a_batch_and_against_history() -> None:
    events = [UsageEvent.model_validate({**GOOD, "id": i}) for i in ("a", "b", "a", "c")]
    fresh, duplicates = split_new(events, {"c"})
    assert [e.id for e in fresh] == ["a", "b"] and duplicates == 2
