"""Back-pressure and idempotency of ingest under failure: a broker that stops, restarts, several processes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import orjson

from shared.db import upgrade_database
from shared.event_records import group_events
from tests.helpers import TopicReader, await_for, produce
from tests.integration.ingest.test_http import usage

ROOT = Path(__file__).resolve().parents[3]


async def ingested(database_url: str, event_id: str) -> bool:
    """Recorded at all: produced, or claimed and not released (a failed produce must release its claim)."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return bool(await connection.fetchval("SELECT count(*) FROM ingested_events WHERE event_id = $1", event_id))
    finally:
        await connection.close()


async def test_a_stopped_broker_gets_503_with_retry_after_in_bounded_time_never_a_2xx(
    stack_factory, database_url, service_factory, api_key_factory, tmp_path
) -> None:
    broker_dir = tmp_path / "kafka"
    started = subprocess.run(["bash", str(ROOT / "deploy/kafka.sh"), "start", str(broker_dir)], capture_output=True, text=True, timeout=150)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        stack = stack_factory(database_url, KAFKA_BOOTSTRAP_SERVERS=started.stdout.strip())
        key = api_key_factory(database_url)
        service_factory("ingest", stack, RADAR_PRODUCE_TIMEOUT_S="3")
        async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            assert (await client.post("/v1/events", json={"events": [usage("before")]})).status_code == 202
            stopped = subprocess.run(["bash", str(ROOT / "deploy/kafka.sh"), "stop", str(broker_dir)], capture_output=True, timeout=60)
            assert stopped.returncode == 0
            answers = await asyncio.gather(*(client.post("/v1/events", json={"events": [usage(f"down-{n}")]}) for n in range(5)))
            account = await client.put("/v1/accounts/acme", json={"name": "Acme"})
    finally:
        subprocess.run(["bash", str(ROOT / "deploy/kafka.sh"), "stop", str(broker_dir)], capture_output=True, timeout=60)
    for answer in [*answers, account]:
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["retry-after"]) >= 1 and "retry" in answer.json()["message"]
    # nothing unacknowledged was recorded as ingested: a retry will be produced, not dropped as a duplicate
    assert await ingested(database_url, "before")
    assert not any([await ingested(database_url, f"down-{n}") for n in range(5)])


async def test_a_stopped_database_gets_503_in_bounded_time_and_the_retries_are_produced_once(
    stack_factory, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    """PostgreSQL (the shared dedupe record) stops mid-traffic and comes back: nothing is promised while it is
    gone, and the clients' retries afterwards are accepted, not taken for duplicates, and produced once."""
    cluster = Path(tempfile.mkdtemp(prefix="radar-pg-"))  # not under pytest's tmp_path: the postgres user must reach it
    postgres = ["bash", str(ROOT / "deploy/postgres.sh")]
    started = subprocess.run([*postgres, "start", str(cluster)], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr[-3000:]
    database_url = started.stdout.strip()
    try:
        await asyncio.to_thread(upgrade_database, database_url)
        key = api_key_factory(database_url)
        stack = stack_factory(database_url)
        service_factory("ingest", stack, RADAR_PRODUCE_TIMEOUT_S="3")
        batches = [{"events": [usage(f"outage-{n}")]} for n in range(4)]
        async with (
            TopicReader(kafka_bootstrap, stack.topics.usage_events) as reader,
            httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}, timeout=30) as client,
        ):
            assert (await client.post("/v1/events", json={"events": [usage("before-outage")]})).status_code == 202
            assert subprocess.run([*postgres, "stop", str(cluster)], capture_output=True, timeout=60).returncode == 0
            began = asyncio.get_running_loop().time()
            answers = await asyncio.gather(*(client.post("/v1/events", json=batch) for batch in batches))
            waited = asyncio.get_running_loop().time() - began
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert int(answer.headers["retry-after"]) >= 1 and "retry" in answer.json()["message"]
            assert waited < 15, f"the 503s took {waited:.1f}s"

            again = subprocess.run([*postgres, "start", str(cluster)], capture_output=True, text=True, timeout=120)
            assert again.returncode == 0 and again.stdout.strip() == database_url, again.stderr[-3000:]
            retried = [(await client.post("/v1/events", json=batch)).json() for batch in batches]
            assert retried == [{"accepted": 1, "duplicates": 0}] * len(batches)
            await reader.wait_events(1 + len(batches), 60, "events accepted before the outage and retried after it")
            await reader.drain_for(1)
        ids = Counter(event["id"] for event in reader.events())
        assert ids == Counter(["before-outage", *(f"outage-{n}" for n in range(4))])  # each once: none lost, none twice
    finally:
        subprocess.run([*postgres, "stop", str(cluster)], capture_output=True, timeout=60)
        shutil.rmtree(cluster, ignore_errors=True)


async def test_replays_are_duplicates_across_processes_and_restarts(stack_factory, database_url, service_factory, api_key_factory) -> None:
    first = stack_factory(database_url)
    second = stack_factory(database_url)
    key = api_key_factory(database_url)
    one = service_factory("ingest", first)
    service_factory("ingest", second)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as client:
        sent = await client.post(first.url("ingest", "/v1/events"), json={"events": [usage("once")]})
        assert sent.json() == {"accepted": 1, "duplicates": 0}
        other = await client.post(second.url("ingest", "/v1/events"), json={"events": [usage("once")]})
        assert other.json() == {"accepted": 0, "duplicates": 1}
        one.stop()
        service_factory("ingest", first)
        restarted = await client.post(first.url("ingest", "/v1/events"), json={"events": [usage("once"), usage("twice")]})
        assert restarted.json() == {"accepted": 1, "duplicates": 1}


async def test_the_dedupe_window_expires_and_old_ids_are_pruned(
    stack_factory, database_url, service_factory, api_key_factory, tmp_path
) -> None:
    config = tmp_path / "radar.yaml"
    config.write_text("ingest:\n  dedupe_window_days: 0.00003\n  dedupe_prune_every_seconds: 0.5\n")  # ~2.6 s
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack, RADAR_CONFIG=str(config))
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}) as client:
        assert (await client.post("/v1/events", json={"events": [usage("w1")]})).json()["accepted"] == 1
        assert (await client.post("/v1/events", json={"events": [usage("w1")]})).json()["duplicates"] == 1

        async def pruned() -> bool:
            return not await ingested(database_url, "w1")

        await await_for(pruned, 30, "the id to be pruned past the window")
        again = await client.post("/v1/events", json={"events": [usage("w1")]})
        assert again.json() == {"accepted": 1, "duplicates": 0}


async def test_an_id_claimed_but_never_produced_answers_503_until_its_lease_runs_out_then_is_produced(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    """A process that died between claiming an id and Kafka's ack left the claim behind: a retry must be
    produced (after the lease), never counted as a duplicate and dropped."""
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)  # the default lease: 30 s
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO ingested_events (event_id, account_id, received_at, produced, claim_id) "
            "VALUES ('orphan', 'acme', now(), false, nextval('ingest_claim_ids'))"
        )
        async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            held = await client.post("/v1/events", json={"events": [usage("orphan"), usage("fresh")]})
            assert held.status_code == 503 and int(held.headers["retry-after"]) >= 1 and "retry" in held.json()["message"]
            # nothing of that request stays claimed: its other id is free for the retry at once
            assert await connection.fetchval("SELECT count(*) FROM ingested_events WHERE event_id = 'fresh'") == 0

            await connection.execute("UPDATE ingested_events SET received_at = now() - interval '31 seconds' WHERE event_id = 'orphan'")
            retried = await client.post("/v1/events", json={"events": [usage("orphan"), usage("fresh")]})
            assert (retried.status_code, retried.json()) == (202, {"accepted": 2, "duplicates": 0})
            produced = await connection.fetchval(
                "SELECT count(*) FROM ingested_events AS e JOIN ingest_produced_claims AS p ON p.claim_id = e.claim_id"
            )
            assert produced == 2, "both ids are held by the retry's claim, and that claim is marked produced"
            again = await client.post("/v1/events", json={"events": [usage("orphan")]})
            assert again.json() == {"accepted": 0, "duplicates": 1}
    finally:
        await connection.close()
    async with TopicReader(kafka_bootstrap, stack.topics.usage_events) as reader:
        await reader.wait_events(2, 30, "the retried events on usage-events")
        await reader.drain_for(1)
    assert sorted(event["id"] for event in reader.events()) == ["fresh", "orphan"]


async def test_a_process_killed_after_kafkas_ack_but_before_the_mark_is_not_produced_again(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    """The claim's events reached Kafka and its process died before marking them: the retry that takes the claim
    over once its lease has run out finds them on usage-events and answers them as duplicates, so signals never
    counts them twice, however long ago its window of recent ids let them go."""
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)
    landed = usage("landed")
    for record in group_events([("acme", orjson.dumps(landed))], stack.settings.radar_partitions):
        await produce(kafka_bootstrap, stack.topics.usage_events, [(record.key or b"", record.value)])
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(
            "INSERT INTO ingested_events (event_id, account_id, received_at, produced, claim_id) "
            "VALUES ('landed', 'acme', now() - interval '31 seconds', false, nextval('ingest_claim_ids'))"
        )
        async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            retried = await client.post("/v1/events", json={"events": [landed, usage("fresh")]})
            assert (retried.status_code, retried.json()) == (202, {"accepted": 1, "duplicates": 1})
            again = await client.post("/v1/events", json={"events": [landed]})
            assert again.json() == {"accepted": 0, "duplicates": 1}, "the takeover's claim is marked: a plain duplicate now"
            # all on one account, so one partition: once this marker is read, whatever the retries produced has been
            assert (await client.post("/v1/events", json={"events": [usage("marker")]})).status_code == 202
    finally:
        await connection.close()
    async with TopicReader(kafka_bootstrap, stack.topics.usage_events) as reader:
        await reader.wait_events(3, 30, "the landed event, the fresh one and the marker on usage-events")
    assert Counter(event["id"] for event in reader.events()) == {"landed": 1, "fresh": 1, "marker": 1}
