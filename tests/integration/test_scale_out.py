"""Scaling out: two ingest processes and two signals workers of one consumer group run at once. The
accounts' partitions are split between the workers, every event is processed exactly once across them,
every signal comes out once, and Prometheus, scraping all four processes, adds their metrics up right."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import orjson

from tests.conftest import Stack
from tests.fixtures.ops import wait_for_value
from tests.helpers import TopicReader, free_port, wait_for

T = "2026-11-10T12:00:00Z"
ACCOUNTS = [f"acct-{i:02d}" for i in range(8)]
LIMIT = 1_000


def usage(event_id: str, account: str, quantity: float) -> dict:
    return {"id": event_id, "type": "usage", "account_id": account, "timestamp": T, "metric": "api_calls", "quantity": quantity}


def twin(stack: Stack) -> Stack:
    """Same topics, consumer groups and database; its own HTTP ports: a second process of each service."""
    return replace(stack, env={**stack.env, "RADAR_INGEST_PORT": str(free_port()), "RADAR_SIGNALS_PORT": str(free_port())})


def both_ready(stacks: list[Stack]) -> bool:
    try:
        return all(httpx.get(s.url("signals", "/readyz"), timeout=2).status_code == 200 for s in stacks)
    except httpx.HTTPError:
        return False


async def test_two_ingest_processes_and_two_signals_workers_share_the_work_and_the_metrics_add_up(
    stack_factory, database_url, service_factory, api_key_factory, prometheus_factory, kafka_bootstrap
) -> None:
    first = stack_factory(database_url)
    second = twin(first)
    key = api_key_factory(database_url)
    service_factory("signals", first)
    service_factory("signals", second)
    service_factory("ingest", first)
    service_factory("ingest", second)
    # the second worker's join rebalanced the group: wait until both own partitions and neither is rebalancing
    wait_for(lambda: both_ready([first, second]), 90, "both signals workers to be assigned partitions")
    prometheus = prometheus_factory(
        {
            "radar-ingest": [s.url("ingest").removeprefix("http://") for s in (first, second)],
            "radar-signals": [s.url("signals").removeprefix("http://") for s in (first, second)],
        }
    )
    prometheus.wait_all_up()

    clients = [httpx.AsyncClient(base_url=s.url("ingest"), headers={"Authorization": f"Bearer {key}"}, timeout=30) for s in (first, second)]
    try:
        for index, account in enumerate(ACCOUNTS):  # accounts alternate between the two ingest processes
            body = {"name": account, "domains": [f"{account}.example"], "limits": {"api_calls": LIMIT}, "owners": {"csm": "dana"}}
            assert (await clients[index % 2].put(f"/v1/accounts/{account}", json=body)).status_code == 200
        wait_for_value(prometheus, 'sum(radar_signals_records_total{outcome="processed"})', len(ACCOUNTS), timeout=90)

        # per account: 50 % then 85 % (crosses 80 %) then 87 % (nothing new): one signal per account;
        # the two halves of each account's events go through different ingest processes, concurrently
        batches = (
            [[usage(f"{account}-a", account, 500), usage(f"{account}-b", account, 350)] for account in ACCOUNTS],
            [[usage(f"{account}-c", account, 20)] for account in ACCOUNTS],
        )
        for round_ in batches:
            responses = await asyncio.gather(
                *(clients[index % 2].post("/v1/events", json={"events": events}) for index, events in enumerate(round_))
            )
            assert all(r.status_code == 202 and r.json()["duplicates"] == 0 for r in responses), [r.text for r in responses]
        # a replay through the *other* process is still a duplicate: the dedupe store is shared
        replay = await clients[1].post("/v1/events", json={"events": [usage(f"{ACCOUNTS[0]}-a", ACCOUNTS[0], 500)]})
        assert replay.json() == {"accepted": 0, "duplicates": 1}
    finally:
        for client in clients:
            await client.aclose()

    events = len(ACCOUNTS) * 3
    async with TopicReader(kafka_bootstrap, first.topics.expansion_signals) as reader:
        await reader.wait_count(len(ACCOUNTS), 90, "one signal per account")
        await reader.drain_for(2)
    signals = [orjson.loads(record.value) for record in reader.records]
    assert sorted(s["account_id"] for s in signals) == ACCOUNTS
    assert {(s["type"], s["threshold"]) for s in signals} == {("usage_threshold_crossed", 0.8)}
    async with TopicReader(kafka_bootstrap, first.topics.usage_events) as reader:
        await reader.wait_events(events, 30, "every accepted event on usage-events")
        await reader.drain_for(1)
    assert len(reader.events()) == events
    partitions = {record.partition for record in reader.records}
    assert len(partitions) >= 3  # the accounts spread over the partitions the two workers split

    # ingest: totals add up across the two processes, and each one took its share
    wait_for_value(prometheus, 'sum(radar_ingest_events_total{outcome="accepted"})', events)
    wait_for_value(prometheus, 'sum(radar_ingest_events_total{outcome="duplicate"})', 1)
    per_ingest = prometheus.query('sum by (instance) (radar_ingest_events_total{outcome="accepted"})')
    assert sorted(float(r["value"][1]) for r in per_ingest) == [events / 2, events / 2]
    # signals: each event processed exactly once across the two workers, both of which did some of the work
    wait_for_value(prometheus, 'sum(radar_signals_records_total{outcome="processed"})', len(ACCOUNTS) + events)
    wait_for_value(prometheus, 'sum(radar_signals_emitted_total{type="usage_threshold_crossed"})', len(ACCOUNTS))
    per_worker = prometheus.query('sum by (instance) (radar_signals_records_total{outcome="processed"})')
    assert len(per_worker) == 2 and all(float(r["value"][1]) > 0 for r in per_worker), per_worker
