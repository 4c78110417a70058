"""Ingest against real Kafka and PostgreSQL, as a separate process."""

from __future__ import annotations

import httpx
import orjson

from shared.event_records import decode_events, partition_of
from tests.helpers import TopicReader


def usage(event_id: str, account: str = "acme", quantity: float = 10) -> dict:
    return {
        "id": event_id,
        "type": "usage",
        "account_id": account,
        "timestamp": "2026-11-10T12:00:00Z",
        "metric": "api_calls",
        "quantity": quantity,
    }


async def test_accepted_events_are_on_kafka_keyed_by_account_and_replays_are_duplicates(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)
    headers = {"Authorization": f"Bearer {key}"}
    batch = {"events": [usage("e1"), usage("e2", account="globex"), usage("e3")]}
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=headers) as client:
        first = await client.post("/v1/events", json=batch)
        assert (first.status_code, first.json()) == (202, {"accepted": 3, "duplicates": 0})
        again = await client.post("/v1/events", json={"events": [usage("e1"), usage("e4")]})
        assert (again.status_code, again.json()) == (202, {"accepted": 1, "duplicates": 1})

    async with TopicReader(kafka_bootstrap, stack.topics.usage_events) as reader:
        await reader.wait_events(4, 30, "events on usage-events")
        await reader.drain_for(1)
    assert sorted(event["id"] for event in reader.events()) == ["e1", "e2", "e3", "e4"]
    # one record per partition per request: an array of the events whose account hashes to that partition,
    # keyed by the account when it holds one account's events; each account's events in request order
    partitions = stack.settings.radar_partitions
    assert len(reader.records) == len({partition_of("acme", partitions), partition_of("globex", partitions)}) + 1
    for record in reader.records:
        accounts = {event["account_id"] for event in decode_events(record.value)}
        assert all(partition_of(account, partitions) == record.partition for account in accounts)
        assert record.key == (next(iter(accounts)).encode() if len(accounts) == 1 else None)
    assert [event["id"] for event in reader.events() if event["account_id"] == "acme"] == ["e1", "e3", "e4"]


async def test_bad_keys_and_bad_events_are_refused_clearly(stack_factory, database_url, service_factory, api_key_factory) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)
    async with httpx.AsyncClient(base_url=stack.url("ingest")) as client:
        missing = await client.post("/v1/events", json={"events": [usage("e1")]})
        assert missing.status_code == 401 and "Bearer" in missing.json()["detail"]
        wrong = await client.post("/v1/events", json={"events": [usage("e1")]}, headers={"Authorization": "Bearer rdr_nope"})
        assert wrong.status_code == 401
        bad = await client.post(
            "/v1/events", headers={"Authorization": f"Bearer {key}"}, json={"events": [usage("ok"), {**usage("x"), "quantity": "lots"}]}
        )
        assert bad.status_code == 400
        assert [(e["index"], e["field"]) for e in bad.json()["errors"]] == [(1, "quantity")]
        # nothing of a rejected batch was accepted: the good event is still new
        retry = await client.post("/v1/events", headers={"Authorization": f"Bearer {key}"}, json={"events": [usage("ok")]})
        assert retry.json() == {"accepted": 1, "duplicates": 0}


async def test_account_updates_go_to_the_compacted_topic(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)
    body = {
        "name": "Acme",
        "domains": ["acme.com"],
        "plan": "growth",
        "limits": {"api_calls": 1000},
        "arr": 12000,
        "owners": {"csm": "dana", "ae": "lee"},
    }
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}) as client:
        response = await client.put("/v1/accounts/acme", json=body)
        assert response.status_code == 200, response.text
        invalid = await client.put("/v1/accounts/acme", json={**body, "limits": {"api_calls": -5}})
        assert invalid.status_code == 422 and "limits" in invalid.text
    async with TopicReader(kafka_bootstrap, stack.topics.account_updates) as reader:
        (record,) = await reader.wait_count(1, 30, "account update")
    update = orjson.loads(record.value)
    assert record.key == b"acme" and update["limits"] == {"api_calls": 1000} and update["owners"]["csm"] == "dana"


async def test_ops_endpoints(stack_factory, database_url, service_factory) -> None:
    stack = stack_factory(database_url)
    service_factory("ingest", stack)
    async with httpx.AsyncClient(base_url=stack.url("ingest")) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready == {"ready": True, "checks": {"kafka": True, "database": True}}
        metrics = (await client.get("/metrics")).text
        assert "radar_ingest_requests_total" in metrics


async def test_plans_go_to_their_compacted_topic_and_declarations_read_back(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    reader_key = api_key_factory(database_url, "reader", ("--scope", "read"))
    service_factory("ingest", stack)
    plan = {"limits": {"api_calls": 10000, "seats": 25}, "price": 12000, "next_plan": "scale"}
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}) as client:
        assert (await client.get("/v1/plans/growth")).status_code == 404
        put = await client.put("/v1/plans/growth", json=plan)
        assert put.status_code == 200 and put.json()["plan_id"] == "growth"
        assert (await client.put("/v1/plans/growth", json={**plan, "price": -1})).status_code == 422
        await client.put("/v1/accounts/acme", json={"name": "Acme", "plan": "growth", "limits": {"seats": 30}})
        read = httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {reader_key}"})
        async with read:
            got_plan = (await read.get("/v1/plans/growth")).json()
            got_account = (await read.get("/v1/accounts/acme")).json()
            assert (await read.put("/v1/plans/growth", json=plan)).status_code == 403
    assert (got_plan["limits"], got_plan["price"], got_plan["next_plan"]) == ({"api_calls": 10000, "seats": 25}, 12000, "scale")
    assert (got_account["name"], got_account["plan"], got_account["limits"]) == ("Acme", "growth", {"seats": 30})
    async with TopicReader(kafka_bootstrap, stack.topics.plan_updates) as reader:
        (record,) = await reader.wait_count(1, 30, "plan update")
    assert record.key == b"growth" and orjson.loads(record.value)["limits"] == {"api_calls": 10000, "seats": 25}


async def test_wrong_content_types_and_oversized_requests_are_refused(
    stack_factory, database_url, service_factory, api_key_factory
) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}) as client:
        text = await client.post("/v1/events", content=orjson.dumps({"events": [usage("e1")]}), headers={"content-type": "text/plain"})
        assert text.status_code == 415 and "application/json" in text.json()["message"]
        brotli = await client.post("/v1/events", content=b"x", headers={"content-type": "application/json", "content-encoding": "br"})
        assert brotli.status_code == 415
        huge = await client.post("/v1/events", json={"events": [usage(f"e{n}", quantity=n) for n in range(5000)]})
        assert huge.status_code == 413 and "500" not in huge.json()["message"].split("limit")[0] or huge.status_code == 413
        big_event = await client.post("/v1/events", json={"events": [{**usage("e1"), "metric": "m" * 40_000}]})
        assert big_event.status_code == 413 and big_event.json()["errors"][0]["index"] == 0
        # nothing of the refused requests was accepted
        after = await client.post("/v1/events", json={"events": [usage("e1")]})
        assert after.json() == {"accepted": 1, "duplicates": 0}
