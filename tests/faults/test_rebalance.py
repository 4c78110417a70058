"""A second signals worker joining and then leaving mid-stream, under load: two rebalances of the signals group while
events flow (start-up rebalances are in tests/integration/signals/test_scale_out.py). The joiner leaves gracefully
(SIGTERM: it leaves the group, the survivor takes its partitions at once) or dies (SIGKILL: its partitions wait the
session timeout). Either way nothing acknowledged is lost or counted twice, no alert is lost or sent twice, and the
crossings that waited on the leave reach Slack within a stated bound."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import httpx
import pytest

from tests.conftest import ServiceProcess, Stack, launch_service
from tests.faults.conftest import FaultStack
from tests.faults.harness import SlackStandIn, counted_by_signals, delivered_once, recovery_seconds, wait_until
from tests.helpers import free_port

RATE = 1_000  # events/s
ALONE_S, TOGETHER_S, AFTER_LEAVE_S = 15, 20, 20  # load with one worker, with two, and after the second left
JOIN_BOUND_S = 60  # the join -> a fresh crossing in Slack (the joiner recovers its partitions' tables first)
# the leave -> every crossing that waited on it in Slack: a killed joiner's partitions move after the session timeout
# (10 s), then the survivor recovers their tables from its standby copy and the changelog
LEAVE_BOUND_S = {"sigterm": 30, "sigkill": 60}
LEAVES = {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}


def progress(what: str) -> None:
    """A timestamped line per phase: on a busy machine a slow phase is then seen in the output, not guessed at."""
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


def start_joiner(stack: FaultStack) -> tuple[ServiceProcess, str]:
    """A second signals worker in the same group (same app id), on a port and data directory of its own; returns once
    it holds partitions and has recovered their tables. Blocking: run it in a thread, so the load goes on."""
    port = free_port()
    joiner_stack = Stack({**stack.stack.env, "RADAR_SIGNALS_PORT": str(port)})
    log = stack.workdir / "signals-joiner.log"
    data_dir = stack.workdir / "signals-joiner-data"
    service = launch_service("signals", joiner_stack, stack.workdir, log, 120, RADAR_SIGNALS_DATA_DIR=str(data_dir))
    return service, joiner_stack.url("signals")


def processed_events(worker: str) -> float:
    text = httpx.get(f"{worker}/metrics", timeout=5).text
    pattern = r'^radar_signals_records_total\{kind="event",outcome="processed"\} ([0-9.e+]+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


async def ready(client: httpx.AsyncClient, worker: str) -> bool:
    try:
        return (await client.get(f"{worker}/readyz", timeout=5)).status_code == 200
    except httpx.HTTPError:
        return False


async def every_state_served_by(client: httpx.AsyncClient, workers: list[str], accounts: list[str]) -> bool:
    """Every account's state answers from every worker: `/v1/state` is forwarded by Faust's table_route to the worker
    owning the account's partition, so with two workers each serves half of them through the other."""
    for worker in workers:
        for account in accounts:
            try:
                if (await client.get(f"{worker}/v1/state/{account}", timeout=10)).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
    return True


def longest_wait_on(slack: SlackStandIn, planted_at: dict[str, float], since: float) -> float:
    """The longest a crossing waited on the fault that began at `since`: for each crossing that reached Slack after it,
    from its acknowledgement (or `since`, if acknowledged before) to its arrival. Unlike `recovery_seconds`, which ends
    at the first fresh crossing (one on an untouched partition will do), this covers the partitions that moved."""
    waits = [
        slack.first_arrival[account] - max(acknowledged, since)
        for account, acknowledged in planted_at.items()
        if slack.first_arrival.get(account, 0.0) >= since
    ]
    assert waits, "no crossing reached Slack after the leave"
    return max(waits)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("leave", list(LEAVES))
async def test_a_worker_joining_then_leaving_mid_stream_loses_and_repeats_nothing(
    leave, fault_stack_factory, database_url, running_loads
) -> None:
    stack = fault_stack_factory(database_url)
    first = stack.url("signals")
    load = stack.load(RATE, quiet_accounts=40, planted=ALONE_S + TOGETHER_S + AFTER_LEAVE_S + 15)
    quiet = [load.quiet_account(n) for n in range(load.quiet_accounts)]
    await stack.declare(load)
    load.start()
    running_loads.append(load)
    await asyncio.sleep(ALONE_S)  # the load runs meanwhile: these waits set its length, not an order

    progress("starting the second worker")
    join_started = time.monotonic()
    joiner, second = await asyncio.to_thread(start_joiner, stack)
    try:
        joined = time.monotonic() - join_started
        progress(f"the second worker is ready after {joined:.1f} s")
        join_recovered = await recovery_seconds(stack.slack, load, join_started, JOIN_BOUND_S)
        progress(f"a fresh crossing reached Slack {join_recovered:.1f} s after the join")
        async with httpx.AsyncClient() as client:
            await wait_until(
                lambda: every_state_served_by(client, [first, second], quiet),
                60,
                lambda: "both workers to serve every account's state (their own, or forwarded to its owner)",
            )
        await asyncio.sleep(max(0.0, TOGETHER_S - (time.monotonic() - join_started - joined)))
        processed_by_joiner = processed_events(second)
        assert processed_by_joiner > 0, "the joiner took partitions over but processed no event"

        progress(f"{processed_by_joiner:.0f} events processed by the second worker; {leave} to it")
        left_at = time.monotonic()
        returncode = await asyncio.to_thread(joiner.stop, LEAVES[leave])
    finally:
        joiner.stop(signal.SIGKILL)  # a no-op once it exited; a test failing half-way leaves no worker behind
    expected_exit = 0 if leave == "sigterm" else -signal.SIGKILL
    assert returncode == expected_exit, f"the joiner exited with {returncode} on {leave}:\n{joiner.log()[-3000:]}"
    await asyncio.sleep(max(0.0, AFTER_LEAVE_S - (time.monotonic() - left_at)))
    progress("stopping the load")
    await load.stop()
    progress(f"load stopped: {load.acknowledged_events} events acknowledged; counting")

    async with httpx.AsyncClient() as client:
        # the survivor owns every partition again: each count below is its own, not forwarded to the dead joiner
        await wait_until(lambda: ready(client, first), 60, lambda: "the first worker to hold every partition again")
        await counted_by_signals(client, first, load)
    await delivered_once(stack.slack, load)
    waited = longest_wait_on(stack.slack, load.planted_at, left_at)
    assert waited <= LEAVE_BOUND_S[leave], f"a crossing waited {waited:.1f} s on the {leave} leave (bound {LEAVE_BOUND_S[leave]} s)"
    load.assert_held(ALONE_S + TOGETHER_S + AFTER_LEAVE_S)
    worker_logs = "".join(path.read_text(errors="replace") for path in stack.workdir.glob("signals*.log"))
    stalls = re.findall(r"table recovery of \S+: no record for", worker_logs)
    print(
        f"join then {leave} leave: {load.acknowledged_events} events acknowledged and counted ({processed_by_joiner:.0f} "
        f"processed by the joiner), {len(load.planted_at)} crossings delivered once, {load.retries} retries "
        f"({dict(load.statuses)}); joiner ready in {joined:.1f} s, a fresh crossing {join_recovered:.1f} s after the join; "
        f"every crossing that waited on the leave in Slack within {waited:.1f} s; {len(stalls)} table recovery stalls"
    )
