"""Segment's HTTP tracking API, driven by Segment's own Python library (only the host differs), against real Kafka."""

from __future__ import annotations

import base64
import gzip

import httpx
import orjson
from segment.analytics import Client

from shared.event_records import decode_events, partition_of
from tests.helpers import TopicReader


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def test_segments_own_client_reaches_kafka_and_replays_are_duplicates(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)
    errors: list[Exception] = []
    client = Client(write_key=key, host=stack.url("ingest"), sync_mode=True, on_error=lambda exc, _batch: errors.append(exc))
    client.group(
        "u1", "acme", traits={"name": "Acme Inc", "plan": "growth", "limit_api_calls": 10000, "csm": "dana", "domains": "acme.com"}
    )
    client.identify("u1", traits={"email": "ann@acme.com", "team": "data"}, context={"groupId": "acme"})
    _, tracked = client.track(
        "u1", "Usage Recorded", {"metric": "api_calls", "quantity": 42}, context={"groupId": "acme"}, message_id="m-1"
    )
    client.track("u1", "Button Clicked", {"color": "red"}, context={"groupId": "acme"})  # unmapped: ignored
    client.page("u1", name="Home")  # ignored

    # the batching (background thread, gzip) mode flushes through the same route
    batched = Client(write_key=key, host=stack.url("ingest"), gzip=True, on_error=lambda exc, _batch: errors.append(exc))
    for n in range(3):
        batched.track(
            "u2", "Usage Recorded", {"metric": "api_calls", "quantity": n + 1}, context={"groupId": "globex"}, message_id=f"g-{n}"
        )
    batched.flush()
    batched.join()
    assert errors == []

    async with TopicReader(kafka_bootstrap, stack.topics.usage_events) as events:
        values = await events.wait_events(5, 30, "Segment events on usage-events")
    by_id = {v["id"]: v for v in values}
    assert by_id["m-1"]["type"] == "usage" and by_id["m-1"]["quantity"] == 42 and by_id["m-1"]["account_id"] == "acme"
    assert by_id["m-1"]["timestamp"].startswith(tracked["timestamp"][:19])
    user_added = [v for v in values if v["type"] == "user_added"]
    assert [(u["account_id"], u["user"]["email"], u["user"]["team"]) for u in user_added] == [("acme", "ann@acme.com", "data")]
    assert sorted(v["quantity"] for v in values if v["account_id"] == "globex") == [1, 2, 3]
    partitions = stack.settings.radar_partitions
    assert all(partition_of(event["account_id"], partitions) == r.partition for r in events.records for event in decode_events(r.value))

    async with TopicReader(kafka_bootstrap, stack.topics.account_updates) as accounts:
        (record,) = await accounts.wait_count(1, 30, "the group call on account-updates")
    account = orjson.loads(record.value)
    assert record.key == b"acme"
    assert (account["name"], account["plan"], account["limits"], account["owners"]["csm"], account["domains"]) == (
        "Acme Inc",
        "growth",
        {"api_calls": 10000},
        "dana",
        ["acme.com"],
    )

    # a replayed messageId is a duplicate and is not produced again; a later group call keeps earlier traits
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=basic(key)) as http:
        replay = await http.post("/v1/track", json={**tracked, "sentAt": "2026-11-10T12:00:00Z"})
        assert replay.status_code == 200, replay.text
        assert replay.json() == {"success": True, "accepted": 0, "duplicates": 1, "ignored": 0}
        group = await http.post("/v1/group", json={"groupId": "acme", "userId": "u1", "messageId": "grp-2", "traits": {"ae": "lee"}})
        assert group.json()["accepted"] == 1
        known = await http.get("/v1/accounts/acme", headers={"Authorization": f"Bearer {key}"})
    assert known.status_code == 200
    assert known.json()["owners"] == {"csm": "dana", "ae": "lee", "slack_channel": None} and known.json()["plan"] == "growth"
    async with TopicReader(kafka_bootstrap, stack.topics.usage_events) as again:
        await again.wait_events(5, 30, "events")
        await again.drain_for(1)
    assert sorted(event["id"] for event in again.events()) == sorted(by_id)


async def test_segment_rejections_name_the_message_and_field(stack_factory, database_url, service_factory, api_key_factory) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    events_only = api_key_factory(database_url, "events-only", ("--scope", "events"))
    service_factory("ingest", stack)
    good = {"type": "track", "event": "Usage Recorded", "userId": "u", "context": {"groupId": "acme"}, "properties": {"metric": "m"}}
    async with httpx.AsyncClient(base_url=stack.url("ingest")) as http:
        bad = await http.post(
            "/v1/batch",
            headers=basic(key),
            json={"batch": [{**good, "messageId": "a"}, {**good, "messageId": "b", "properties": {"metric": "m", "quantity": "lots"}}]},
        )
        assert bad.status_code == 400
        assert [(e["index"], e["field"]) for e in bad.json()["errors"]] == [(1, "properties.quantity")]
        no_account = await http.post("/v1/track", headers=basic(key), json={**good, "context": {}})
        assert no_account.status_code == 400 and no_account.json()["errors"][0]["field"] == "context.groupId"
        wrong_route = await http.post("/v1/identify", headers=basic(key), json=good)
        assert wrong_route.status_code == 400
        # writeKey in the body stands in for the Authorization header, as on Segment's API
        body_key = await http.post("/v1/batch", json={"batch": [{**good, "messageId": "c"}], "writeKey": key})
        assert body_key.json()["accepted"] == 1
        no_key = await http.post("/v1/batch", json={"batch": [good]})
        assert no_key.status_code == 401 and "Basic" in no_key.headers["www-authenticate"]
        group = await http.post("/v1/group", headers=basic(events_only), json={"groupId": "acme", "traits": {"name": "A"}})
        assert group.status_code == 403 and "accounts" in group.json()["detail"]
        form = await http.post("/v1/batch", headers={**basic(key), "content-type": "application/x-www-form-urlencoded"}, content=b"a=b")
        assert form.status_code == 415
        zipped = await http.post(
            "/v1/batch",
            headers={**basic(key), "content-type": "application/json", "content-encoding": "gzip"},
            content=gzip.compress(orjson.dumps({"batch": [{**good, "messageId": "d"}]})),
        )
        assert zipped.json()["accepted"] == 1
        bomb = await http.post(
            "/v1/batch",
            headers={**basic(key), "content-type": "application/json", "content-encoding": "gzip"},
            content=gzip.compress(b'{"batch": [' + b" " * 600_000 + b"]}"),
        )
        assert bomb.status_code == 413
