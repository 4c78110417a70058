import gzip
import zlib
from datetime import UTC, datetime

import orjson
import pytest

from services.config import parse_config
from services.ingest.domain.claims import fresh_positions
from services.ingest.domain.cloudevents import cloudevent_id, cloudevents_documents, translate_cloudevents
from services.ingest.domain.config import IngestConfig
from services.ingest.domain.errors import BatchRejected
from services.ingest.domain.events import parse_native
from services.ingest.domain.request_body import MAX_REQUEST_BYTES, check_content_type, decode_body
from services.ingest.domain.segment import message_id, segment_messages, translate_segment
from services.ingest.domain.translation import merge_account
from shared.auth import gcra_retry_after
from shared.config import ConfigError

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
CONFIG = IngestConfig()


def track(**overrides: object) -> dict:
    return {
        "type": "track",
        "event": "Usage Recorded",
        "userId": "u1",
        "messageId": "m1",
        "timestamp": "2026-11-10T11:00:00Z",
        "context": {"groupId": "acme"},
        "properties": {"metric": "api_calls", "quantity": 3},
        **overrides,
    }


def test_track_maps_through_the_config_and_unmapped_calls_are_counted() -> None:
    messages = segment_messages({"batch": [track(), track(event="Clicked", messageId="m2"), {"type": "page"}]}, "batch")
    out = translate_segment(messages, CONFIG.segment, NOW)
    (event,) = out.events
    assert (event.id, event.type, event.account_id, event.metric, event.quantity) == ("m1", "usage", "acme", "api_calls", 3)
    assert out.ignored == 2 and out.positions == [0]


def test_set_gives_defaults_and_from_wins_when_present() -> None:
    out = translate_segment([track(properties={"metric": "emails"})], CONFIG.segment, NOW)
    assert out.events[0].quantity == 1  # set: {quantity: 1}
    custom = parse_config(
        {
            "ingest": {
                "segment": {
                    "track": {"API Called": {"type": "usage", "set": {"metric": "api_calls"}, "from": {"quantity": "properties.n"}}}
                }
            }
        }
    )
    out = translate_segment([track(event="API Called", properties={"n": 9})], custom.ingest.segment, NOW)
    assert (out.events[0].metric, out.events[0].quantity) == ("api_calls", 9)


def test_bad_mapped_values_and_missing_accounts_are_named_by_index_and_source_field() -> None:
    with pytest.raises(BatchRejected) as caught:
        translate_segment(
            [track(), track(messageId="m2", properties={"metric": "x", "quantity": -1}), track(messageId="m3", context={})],
            CONFIG.segment,
            NOW,
        )
    assert [(e.index, e.field) for e in caught.value.errors] == [(1, "properties.quantity"), (2, "context.groupId")]
    assert "2 of 3 messages" in caught.value.message


def test_unmapped_track_can_be_refused() -> None:
    strict = parse_config({"ingest": {"segment": {"unmapped_track": "reject"}}}).ingest.segment
    with pytest.raises(BatchRejected) as caught:
        translate_segment([track(event="Clicked")], strict, NOW)
    assert caught.value.errors[0].field == "event" and "Clicked" in caught.value.errors[0].message


def test_identify_with_an_account_and_email_adds_a_user_else_is_ignored() -> None:
    identify = {
        "type": "identify",
        "userId": "u9",
        "messageId": "i1",
        "traits": {"email": "ann@acme.com", "team": "ops"},
        "context": {"groupId": "acme"},
    }
    out = translate_segment(
        [identify, {**identify, "messageId": "i2", "context": {}}, {**identify, "messageId": "i3", "traits": {}}], CONFIG.segment, NOW
    )
    (event,) = out.events
    assert (event.type, event.user.id, event.user.email, event.user.team) == ("user_added", "u9", "ann@acme.com", "ops")
    assert out.ignored == 2


def test_group_traits_merge_into_what_was_declared() -> None:
    group = {
        "type": "group",
        "groupId": "acme",
        "messageId": "g1",
        "traits": {"csm": "dana", "limit_seats": 30, "domains": "acme.com, acme.io"},
    }
    (patch,) = translate_segment([group], CONFIG.segment, NOW).accounts
    current = {
        "account_id": "acme",
        "name": "Acme",
        "plan": "growth",
        "limits": {"api_calls": 1000},
        "owners": {"ae": "lee"},
        "updated_at": "x",
    }
    merged = merge_account(current, patch)
    assert (merged.name, merged.plan, merged.limits, merged.domains) == (
        "Acme",
        "growth",
        {"api_calls": 1000, "seats": 30},
        ["acme.com", "acme.io"],
    )
    assert (merged.owners.csm, merged.owners.ae) == ("dana", "lee")
    assert merge_account(None, patch).name == "acme"  # no name declared yet: the id stands in
    bad = translate_segment([{**group, "traits": {"arr": -5}}], CONFIG.segment, NOW).accounts[0]
    with pytest.raises(BatchRejected) as caught:
        merge_account(None, bad)
    assert caught.value.errors[0].field == "traits.arr"


def test_single_call_routes_check_the_type_and_ids_without_messageid_are_stable() -> None:
    with pytest.raises(BatchRejected):
        segment_messages(track(), "group")
    assert segment_messages({"event": "x"}, "track")[0]["type"] == "track"
    plain = {"type": "track", "event": "x", "userId": "u"}
    assert message_id({**plain, "sentAt": "a"}) == message_id({**plain, "sentAt": "b"}) != message_id({**plain, "event": "y"})


def cloud(**overrides: object) -> dict:
    return {
        "specversion": "1.0",
        "id": "1",
        "source": "/app",
        "type": "io.expansionradar.usage",
        "subject": "acme",
        "data": {"metric": "m", "quantity": 2},
        **overrides,
    }


def test_cloudevents_native_types_carry_the_event_in_data() -> None:
    out = translate_cloudevents(cloudevents_documents(cloud(time="2026-11-10T10:00:00Z"), batch=False), CONFIG.cloudevents, NOW)
    (event,) = out.events
    assert (event.id, event.type, event.account_id, event.quantity, event.timestamp.hour) == ("/app#1", "usage", "acme", 2, 10)
    assert translate_cloudevents([cloud(time=None) | {"time": "2026-11-10T10:00:00Z"}], CONFIG.cloudevents, NOW).events


def test_cloudevents_are_validated_by_the_sdk_and_named_by_index_and_attribute() -> None:
    documents = [
        cloud(),
        cloud(id="2", specversion="0.3"),
        cloud(id="3", source=""),
        cloud(id="4", time="soon"),
        cloud(id="5", data={"metric": "m", "quantity": 2, "id": "x"}),
        cloud(id="6", type="com.other"),
    ]
    with pytest.raises(BatchRejected) as caught:
        translate_cloudevents(documents, CONFIG.cloudevents, NOW)
    assert [(e.index, e.field) for e in caught.value.errors] == [
        (1, "specversion"),
        (2, "source"),
        (3, "time"),
        (4, "data.id"),
        (5, "type"),
    ]
    with pytest.raises(BatchRejected):
        cloudevents_documents([], batch=True)
    assert cloudevent_id("s" * 300, "1").startswith("sha256:") and len(cloudevent_id("s" * 300, "1")) <= 200


def test_mapped_cloudevent_types() -> None:
    config = parse_config(
        {
            "ingest": {
                "cloudevents": {"types": {"com.x.called": {"type": "usage", "set": {"metric": "calls"}, "from": {"quantity": "data.n"}}}}
            }
        }
    )
    out = translate_cloudevents([cloud(type="com.x.called", data={"n": 4})], config.ingest.cloudevents, NOW)
    assert (out.events[0].metric, out.events[0].quantity) == ("calls", 4)


def test_config_mappings_name_bad_keys() -> None:
    with pytest.raises(ConfigError, match=r"ingest\.segment\.track\.X.*no field 'qty'"):
        parse_config({"ingest": {"segment": {"track": {"X": {"type": "usage", "from": {"qty": "properties.q"}}}}}})
    with pytest.raises(ConfigError, match="group_traits"):
        parse_config({"ingest": {"segment": {"group_traits": {"owners.cfo": "cfo"}}}})
    with pytest.raises(ConfigError, match="dedupe_window_days"):
        parse_config({"ingest": {"dedupe_window_days": 0}})


def test_content_types_and_encodings() -> None:
    assert check_content_type("application/json; charset=utf-8", ("application/json",)) == "application/json"
    for bad in (None, "text/plain"):
        with pytest.raises(BatchRejected) as caught:
            check_content_type(bad, ("application/json",))
        assert caught.value.status == 415
    assert decode_body(gzip.compress(b'{"a": 1}'), "gzip") == b'{"a": 1}'
    assert decode_body(zlib.compress(b"{}"), "deflate") == b"{}"
    for body, encoding, status in [
        (b"x", "br", 415),
        (b"not gzip", "gzip", 400),
        (gzip.compress(b" " * (MAX_REQUEST_BYTES + 1)), "gzip", 413),
    ]:
        with pytest.raises(BatchRejected) as caught:
            decode_body(body, encoding)
        assert caught.value.status == status


def test_native_fast_path_serializes_canonically_and_positions_skip_repeats() -> None:
    parsed = parse_native(
        orjson.dumps(
            {
                "events": [
                    {"id": "a", "type": "gauge", "account_id": "x", "timestamp": "2026-11-10T12:00:00+02:00", "metric": "m", "value": 1}
                ]
            }
        )
    )
    assert orjson.loads(parsed.payloads[0])["timestamp"] == "2026-11-10T10:00:00Z"
    assert fresh_positions(["a", "b", "a", "c"], {"c"}) == [0, 1]
    with pytest.raises(BatchRejected) as caught:
        parse_native(
            orjson.dumps({"events": [{"id": "a\u0000", "type": "nps", "account_id": "x", "timestamp": "2026-11-10T12:00:00Z", "score": 1}]})
        )
    assert caught.value.errors[0].field == "id"


def test_gcra_allows_a_minute_of_requests_at_once_then_spaces_them() -> None:
    now = 1000.0
    assert gcra_retry_after(None, now, 3) == 0
    assert gcra_retry_after(now + 40, now, 3) == 0  # two used: the third fits the minute
    assert gcra_retry_after(now + 60, now, 3) == pytest.approx(20)  # all three used: wait one interval
