"""The Kafka broker or PostgreSQL stopped for 30 s mid-stream, under load: the services ride it out without a restart,
ingest refuses with 503 + Retry-After while it cannot make an event durable, and once the dependency is back nothing
acknowledged is lost and no alert is lost or sent twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import create_database
from tests.faults.conftest import FaultStack, LocalServer
from tests.faults.harness import Load, iso_now, nothing_lost_or_repeated, recovery_seconds

RATE = 1_000  # events/s
BEFORE_S, DOWN_S, AFTER_S = 15, 30, 20  # load before the outage, the outage, load after the restart
RECOVERY_BOUND_S = {"kafka": 90, "postgres": 60}  # restart -> a fresh crossing in Slack
# one crossing a second for as long as the load may run: stopping and starting a server on a loaded machine takes
# tens of seconds on top of the outage itself, and the recovery needs crossings planted after the restart
PLANTED = 180
# what the outage leaves queued (a minute of load, with the server's own stop and start) drains at ingest's pace
DRAIN_S = 420


def outage_load(stack: FaultStack) -> Load:
    return Load(stack.url("ingest"), stack.key, stack.tag, quiet_accounts=40, planted_accounts=stack.planted(PLANTED), rate=RATE)


async def probe(stack: FaultStack) -> httpx.Response:
    """One event of an account the counts leave out, posted once the server is down: the answer the load retried."""
    event = {"id": f"probe-{stack.tag}", "type": "usage", "account_id": f"probe-{stack.tag}", "metric": "api_calls", "quantity": 1}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {stack.key}"}, timeout=60) as client:
        return await client.post(stack.url("ingest", "/v1/events"), json={"events": [event | {"timestamp": iso_now()}]})


async def ride_out_outage(stack: FaultStack, load: Load, dependency: str, server: LocalServer, running_loads: list[Load]) -> None:
    """Runs the load across a stop and start of `server`, then checks the counts; no service may exit meanwhile."""
    await stack.declare(load)
    load.start()
    running_loads.append(load)
    await asyncio.sleep(BEFORE_S)  # the load runs meanwhile: these waits set its length, not an order

    stopping_at = time.monotonic()
    await asyncio.to_thread(server.stop)  # off the event loop: the load goes on meanwhile
    stopped_at = time.monotonic()
    refused_before = load.statuses["503"]
    probing = asyncio.create_task(probe(stack))
    await asyncio.sleep(DOWN_S)
    refused_during = load.statuses["503"] - refused_before
    probed = await probing
    await asyncio.to_thread(server.start)
    restarted_at = time.monotonic()
    print(f"\n{dependency}: stop took {stopped_at - stopping_at:.1f} s, down {restarted_at - stopped_at:.1f} s in all", flush=True)
    recovered = await recovery_seconds(stack.slack, load, restarted_at, RECOVERY_BOUND_S[dependency])
    print(f"{dependency}: a fresh crossing in Slack {recovered:.1f} s after the restart; {load.pending} batches pending", flush=True)
    await asyncio.sleep(max(0.0, AFTER_S - (time.monotonic() - restarted_at)))
    await load.stop(drain_timeout=DRAIN_S)

    exited = {name: service.process.returncode for name, service in stack.services.items() if service.process.poll() is not None}
    assert exited == {}, f"services exited during the {dependency} outage: {exited}\n{stack.logs()}"
    assert refused_during > 0, f"ingest never answered 503 while {dependency} was down: {dict(load.statuses)}"
    assert load.statuses["500"] == 0, f"ingest answered 500 (a bug, not an outage) during the {dependency} outage: {dict(load.statuses)}"
    assert probed.status_code == 503 and int(probed.headers["retry-after"]) >= 1, f"{probed.status_code} {probed.headers}"
    await nothing_lost_or_repeated(stack.url("signals"), stack.slack, load, BEFORE_S + DOWN_S + AFTER_S)
    print(
        f"{dependency} down {DOWN_S} s: {load.acknowledged_events} events acknowledged and counted, {len(load.planted_at)} "
        f"crossings delivered once, {load.retries} retries ({dict(load.statuses)}), back {recovered:.1f} s after the restart"
    )


@pytest.mark.timeout(900)
async def test_kafka_broker_stopped_30_s(
    own_kafka: LocalServer, fault_stack_factory: Callable[..., FaultStack], database_url, running_loads
) -> None:
    stack = fault_stack_factory(database_url, kafka_bootstrap=own_kafka.address)
    load = outage_load(stack)
    await ride_out_outage(stack, load, "kafka", own_kafka, running_loads)


@pytest.mark.timeout(900)
async def test_postgres_stopped_30_s(own_postgres: LocalServer, fault_stack_factory: Callable[..., FaultStack], running_loads) -> None:
    stack = fault_stack_factory(create_database(own_postgres.address))
    load = outage_load(stack)
    await ride_out_outage(stack, load, "postgres", own_postgres, running_loads)
