"""Signals state: its size per account, and how long a restarted worker takes to have it back.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/signals_recovery.py [--accounts 100000]

The design's target: ≤ 1 KB of state per (account, metric), and 100,000 accounts recovered after a restart in
under 10 s. Produces one account update and `--events` usage events (one metric) for each account, grouped as
ingest writes them, then for each store (memory://, rocksdb://):
  1. a worker processes everything and stops gracefully (SIGTERM): the changelog holds every account's state;
  2. a worker with the same application id starts in the same directory and recovers the table.
Each start is timed from the process's launch to its /readyz (table recovered, partitions assigned): the first
start, with nothing to recover, is the baseline measured in the same run, and the difference is the recovery.
A sample of accounts is then read back from the restarted worker until each holds every event (a graceful stop
leaves the events after its last flush to the restart, which applies them again): that time is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from signals_throughput import PARTITIONS, processed, run_process, send_requests, stop  # noqa: E402 (this directory)

from services.signals.domain.apply import apply_account_update, apply_event  # noqa: E402
from services.signals.domain.config import Rules  # noqa: E402
from services.signals.domain.state import empty_state, encode_state  # noqa: E402
from shared.embedded_broker import free_port  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.schemas import AccountUpdate, UsageEvent  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.topics import Topics  # noqa: E402

STORES = ("memory://", "rocksdb://")
TARGET_SECONDS, TARGET_BYTES = 10.0, 1024


def account_update(account_id: str) -> bytes:
    return orjson.dumps(
        {"account_id": account_id, "name": account_id, "limits": {"api_calls": 10**6}, "updated_at": "2026-11-10T00:00:00Z"}
    )


def usage(account_id: str) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid.uuid4()),  # ids as product teams send them
            "type": "usage",
            "account_id": account_id,
            "timestamp": "2026-11-10T12:00:00Z",
            "metric": "api_calls",
            "quantity": 1,
        }
    )


async def produce(bootstrap: str, topics: Topics, accounts: int, events: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        with Progress() as progress:
            task = progress.add_task("producing", total=accounts * (events + 1))
            updates = [f"a{index}" for index in range(accounts)]
            await send_requests(producer, topics.account_updates, [(a, account_update(a)) for a in updates], 1)
            progress.advance(task, accounts)
            stream = [(f"a{index}", usage(f"a{index}")) for _ in range(events) for index in range(accounts)]
            await send_requests(producer, topics.usage_events, stream, 100, partial(progress.advance, task))
    finally:
        await producer.stop()


def launch(env: dict[str, str], workdir: Path, log_name: str) -> subprocess.Popen[bytes]:
    return run_process([sys.executable, "-m", "services.cli", "serve", "signals"], env, workdir / log_name)


def seconds_to_ready(process: subprocess.Popen[bytes], port: int, started: float, timeout: float) -> float:
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the signals worker exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"the signals worker was not ready within {timeout}s")


async def changelog_sizes(bootstrap: str, topic: str) -> tuple[int, dict[bytes, int]]:
    """(records in the changelog, the latest state's size per account)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records, latest = 0, {}
    try:
        partitions = consumer.assignment() or set()
        while not partitions:
            await asyncio.sleep(0.05)
            partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=20_000)).values():
                for record in batch:
                    records += 1
                    latest[record.key] = len(record.value or b"")
    finally:
        await consumer.stop()
    return records, latest


def full_window_state_bytes() -> int:
    """One account, one metric, a full window of recent ids (UUIDs): the largest an account with one metric gets."""
    rules, state = Rules(), empty_state("a0")
    at = datetime(2026, 11, 10, 12, tzinfo=UTC)
    apply_account_update(state, AccountUpdate(account_id="a0", name="a0", limits={"api_calls": 10**6}, updated_at=at), rules)
    for _ in range(rules.recent_event_ids * 2):
        event = UsageEvent(id=str(uuid.uuid4()), type="usage", account_id="a0", timestamp=at, metric="api_calls", quantity=1)
        apply_event(state, event, rules)
    return len(encode_state(state))


def run_store(bootstrap: str, prefix: str, store: str, total: int, sample: list[str], events: int, workdir: Path) -> dict[str, float]:
    port = free_port()
    app_id = f"{prefix}signals-{store.split(':')[0]}"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RADAR_TOPIC_PREFIX": prefix,
        "RADAR_SIGNALS_APP_ID": app_id,
        "RADAR_SIGNALS_PORT": str(port),
        "RADAR_SIGNALS_STORE": store,
        "RADAR_LOG_LEVEL": "WARNING",
        "RADAR_LOG_FORMAT": "json",
    }
    started = time.perf_counter()
    first = launch(env, workdir, f"first-{store[:6]}.log")
    try:
        baseline = seconds_to_ready(first, port, started, 120)
        with Progress() as progress:
            task = progress.add_task(f"processing ({store})", total=total)
            while (done := processed(port)) < total:
                progress.update(task, completed=done)
                time.sleep(0.1)
            progress.update(task, completed=total)
    finally:
        stop(first)
    started = time.perf_counter()
    second = launch(env, workdir, f"second-{store[:6]}.log")
    try:
        restarted = seconds_to_ready(second, port, started, 300)
        # a graceful stop writes no state after its last flush: the restart applies that tail again (exactly, by offset)
        deadline, missing = time.perf_counter() + 120, list(sample)
        while missing:
            missing = [account_id for account_id in missing if used(port, account_id) != events]
            if missing and time.perf_counter() > deadline:
                raise SystemExit(f"{store}: account {missing[0]} recovered with usage {used(port, missing[0])}, expected {events}")
        complete = time.perf_counter() - started
    finally:
        stop(second)
    records, latest = asyncio.run(changelog_sizes(bootstrap, f"{app_id}-account-state-changelog"))
    mean_bytes = sum(latest.values()) / len(latest)
    return {"baseline": baseline, "restarted": restarted, "complete": complete, "records": records, "mean_bytes": mean_bytes}


def used(port: int, account_id: str) -> float | None:
    state = httpx.get(f"http://127.0.0.1:{port}/v1/state/{account_id}", timeout=10)
    return state.json()["usage"].get("api_calls", {}).get("used") if state.status_code == 200 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=3, help="usage events per account")
    options = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS to the broker to measure on")
    prefix = f"bench{uuid.uuid4().hex[:8]}-"
    settings = Settings(kafka_bootstrap_servers=bootstrap, radar_topic_prefix=prefix, radar_partitions=PARTITIONS)
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(bootstrap, Topics.from_settings(settings), options.accounts, options.events))
    total = options.accounts * (options.events + 1)
    sample = [f"a{index}" for index in random.sample(range(options.accounts), min(20, options.accounts))]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for store in STORES:
            workdir = Path(tmp) / store.split(":")[0]
            workdir.mkdir()
            results[store] = run_store(bootstrap, prefix, store, total, sample, options.events, workdir)
    print(f"{options.accounts:,} accounts, {options.events} usage events each (one metric), {PARTITIONS} partitions, broker {bootstrap}")
    for store, figures in results.items():
        recovery = figures["restarted"] - figures["baseline"]
        print(
            f"{store:<11} start with nothing to recover {figures['baseline']:5.1f} s; restart to ready {figures['restarted']:5.1f} s "
            f"(recovery {recovery:4.1f} s, {figures['records']:,.0f} changelog records), to every sampled account complete "
            f"{figures['complete']:5.1f} s; target < {TARGET_SECONDS:.0f} s: {'met' if figures['restarted'] < TARGET_SECONDS else 'NOT'}"
        )
    mean = results[STORES[0]]["mean_bytes"]
    full = full_window_state_bytes()
    print(f"state per (account, metric): {mean:,.0f} bytes as measured here; {full:,} bytes with a full window of UUID event ids")
    verdicts = ["met" if size <= TARGET_BYTES else "NOT met" for size in (mean, full)]
    print(f"target <= {TARGET_BYTES:,} bytes: {verdicts[0]} as measured here, {verdicts[1]} with a full window")


if __name__ == "__main__":
    main()
