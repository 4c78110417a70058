"""kill -9 of each service mid-stream, under load: nothing acknowledged is lost, no alert is lost or sent twice."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import nothing_lost_or_repeated, recovery_seconds

RATE = 1_000  # events/s
BEFORE_S, DOWN_S, AFTER_S = 15, 5, 20  # load before the kill, time the service stays dead, load after its restart
RECOVERY_BOUND_S = {"ingest": 30, "signals": 60, "scoring": 45, "notifier": 45}


@pytest.mark.parametrize("victim", ["ingest", "signals", "scoring", "notifier"])
async def test_kill_9_mid_stream_loses_and_repeats_nothing(victim, fault_stack_factory, database_url, running_loads) -> None:
    stack = fault_stack_factory(database_url)
    load = stack.load(RATE, quiet_accounts=40, planted=BEFORE_S + DOWN_S + AFTER_S + 5)
    await stack.declare(load)
    load.start()
    running_loads.append(load)
    await asyncio.sleep(BEFORE_S)  # the load runs meanwhile: these waits set its length, not an order

    stack.kill(victim)
    await asyncio.sleep(DOWN_S)
    restarted_at = time.monotonic()
    stack.start(victim)
    recovered = await recovery_seconds(stack.slack, load, restarted_at, RECOVERY_BOUND_S[victim])
    await asyncio.sleep(max(0.0, AFTER_S - (time.monotonic() - restarted_at)))
    await load.stop()

    await nothing_lost_or_repeated(stack.url("signals"), stack.slack, load, BEFORE_S + DOWN_S + AFTER_S)
    print(
        f"kill -9 {victim}: {load.acknowledged_events} events acknowledged and counted, {len(load.planted_at)} crossings "
        f"delivered once, {load.retries} retries ({dict(load.statuses)}), back {recovered:.1f} s after the restart"
    )
