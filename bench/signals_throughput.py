"""Signals worker throughput, one worker process, against two baselines measured in the same run.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/signals_throughput.py [--events 200000]

Produces N ~100-byte usage events over 5,000 accounts (keyed by account, 4 partitions) plus one
account update each, then consumes them three times, each from the beginning:
  (a) a bare aiokafka consume-and-parse loop (orjson), in this process;
  (b) a naive Faust agent, one event at a time with one table write per event (a worker process);
  (c) the signals worker itself (`radar serve signals`, a worker process), progress read from /metrics, on
      the same events grouped as ingest writes them (requests of 100: one record per partition per request);
  (d) Faust's own floor on those grouped records: an agent taking them in batches as the worker does
      (`noack_take`) and doing nothing else, which says how much of the worker's time is Faust's per record.
Each rate is counted from the first record processed to the last, so start-up and recovery are not in it.
All three run on asyncio's own loop, as the worker does. The bare loop and the worker run `--runs` times (3), each worker run
from no state; the ratios use the medians (one run moves by 10-20 % with the flushes that fall in it). The naive
agent, which takes about a minute, runs once: it varies by a few per cent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.embedded_broker import free_port  # noqa: E402
from shared.event_records import group_events  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.topics import Topics  # noqa: E402

ACCOUNTS = 5_000
PARTITIONS = 4
# 200k events over 5,000 accounts is 40 per account: 48 makes each account cross 80 % once (5,000 signals)
LIMIT = 48
THRESHOLDS = (0.8, 0.9, 0.95)  # the default usage thresholds


def expected_signals(count: int) -> int:
    """Each event adds 1, and the thresholds lie more than 1 apart: every threshold an account's total reaches is a
    signal of its own."""
    totals = [count // ACCOUNTS + (1 if index < count % ACCOUNTS else 0) for index in range(ACCOUNTS)]
    return sum(1 for total in totals for threshold in THRESHOLDS if total >= threshold * LIMIT)


def event_bytes(index: int) -> tuple[bytes, bytes]:
    account = f"a{index % ACCOUNTS}"
    body = {
        "id": f"e{index}",
        "type": "usage",
        "account_id": account,
        "timestamp": "2026-11-10T12:00:00Z",
        "metric": "api_calls",
        "quantity": 1,
    }
    return account.encode(), orjson.dumps(body)


async def produce_all(bootstrap: str, topics: Topics, count: int, request: int = 1) -> float:
    """`request` > 1: the events grouped as ingest writes a request of that many (shared.event_records): one record
    per partition, each carrying the request's events of accounts that hash to it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        updates = []
        for index in range(ACCOUNTS):
            account = f"a{index}"
            update = {"account_id": account, "name": account, "limits": {"api_calls": LIMIT}, "updated_at": "2026-11-10T00:00:00Z"}
            updates.append(await producer.send(topics.account_updates, orjson.dumps(update), key=account.encode()))
        await asyncio.gather(*updates)
        events = [(key.decode(), value) for key, value in map(event_bytes, range(count))]
        await send_requests(producer, topics.usage_events, events, request)
    finally:
        await producer.stop()
    return sum(len(value) for _account, value in events) / count


async def send_requests(
    producer: AIOKafkaProducer, topic: str, events: list[tuple[str, bytes]], request: int, sent: Callable[[int], object] | None = None
) -> None:
    """(account id, event JSON) pairs as ingest writes requests of `request` events: one record per partition per
    request (1: a record per event, keyed by its account). Every ack is awaited, 20,000 at a time; `sent` hears of
    each request."""
    pending = []
    for start in range(0, len(events), request):
        chunk = events[start : start + request]
        if request == 1:
            pending += [await producer.send(topic, value, key=account.encode()) for account, value in chunk]
        else:
            for record in group_events(chunk, PARTITIONS):
                pending.append(await producer.send(topic, record.value, key=record.key, partition=record.partition))
        if sent is not None:
            sent(len(chunk))
        if len(pending) >= 20_000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def bare_loop(bootstrap: str, topics: Topics, count: int) -> float:
    """(a) the ceiling: fetch and parse, nothing else."""
    consumer = AIOKafkaConsumer(
        topics.usage_events, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    seen, started = 0, 0.0
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                if not started:
                    started = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


FAUST_APP = """
import os, sys, time, faust, orjson
app = faust.App(os.environ["BENCH_APP_ID"], broker="kafka://" + os.environ["KAFKA_BOOTSTRAP_SERVERS"], store="memory://",
                topic_partitions=4, web_port=int(os.environ["BENCH_PORT"]), web_host="127.0.0.1", web_bind="127.0.0.1",
                consumer_auto_offset_reset="earliest", autodiscover=False,
                stream_buffer_maxsize=40_000, broker_max_poll_records=20_000, consumer_max_fetch_size=4 * 1024**2)
source = app.topic(os.environ["BENCH_TOPIC"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
target = int(os.environ["BENCH_COUNT"])
progress = {"seen": 0, "started": 0.0}

def count(events):
    if not progress["started"]:
        progress["started"] = time.perf_counter()
    progress["seen"] += events
    if progress["seen"] >= target > 0:
        print(f"RATE {progress['seen'] / (time.perf_counter() - progress['started']):.1f}", flush=True)
        progress["seen"] = -target
"""
NAIVE_WORKER = (
    FAUST_APP
    + """
totals = app.Table("totals", default=float, key_type=str, value_type=float)

@app.agent(source, concurrency=1)
async def naive(stream):
    async for value in stream:
        event = orjson.loads(value)
        totals[event["account_id"]] += event["quantity"]
        count(1)

faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()
"""
)
# the worker's settings and batching (services/signals/entrypoints/faust_app.py), and no work: each record's events are counted, not parsed
FLOOR_WORKER = (
    FAUST_APP
    + """
@app.agent(source, concurrency=1)
async def floor(stream):
    async for events in stream.noack_take(5_000, within=0.02):
        count(sum(event.value.count(b'"id":') for event in events))

faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()
"""
)


def run_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Run in the scratch directory, where Faust puts its `<app id>-data` directory, with the project importable."""
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    return subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, cwd=log.parent)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)


def naive_agent(bootstrap: str, topics: Topics, count: int, workdir: Path, timeout: float) -> float:
    """(b) one event at a time, one table write per event."""
    return faust_agent(NAIVE_WORKER, "naive", bootstrap, topics, count, workdir, timeout)


def floor_agent(bootstrap: str, topics: Topics, count: int, workdir: Path, timeout: float) -> float:
    """(d) Faust's cost alone on the grouped records, taken as the worker takes them."""
    return faust_agent(FLOOR_WORKER, "floor", bootstrap, topics, count, workdir, timeout)


def faust_agent(source: str, name: str, bootstrap: str, topics: Topics, count: int, workdir: Path, timeout: float) -> float:
    """A Faust app of its own (a worker process) that prints its rate once it has seen `count` events."""
    script = workdir / f"{name}_worker.py"
    script.write_text(source)
    log = workdir / f"{name}.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "BENCH_APP_ID": f"bench-{name}-{uuid.uuid4().hex[:8]}",
        "BENCH_TOPIC": topics.usage_events,
        "BENCH_COUNT": str(count),
        "BENCH_PORT": str(free_port()),
    }
    process = run_process([sys.executable, str(script), "worker"], env, log)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"RATE ([0-9.]+)", log.read_text(errors="replace"))
            if found:
                return float(found.group(1))
            if process.poll() is not None:
                raise SystemExit(f"{name} worker exited:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        raise SystemExit(f"{name} worker did not finish within {timeout}s:\n{log.read_text(errors='replace')[-2000:]}")
    finally:
        stop(process)


def processed(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(v) for v in re.findall(r'^radar_signals_records_total\{kind="\w+",outcome="processed"\} ([0-9.e+]+)$', text, re.M))


def settled_output(port: int, expected: int, deadline: float) -> str:
    """The signals emitted, once every delivery is acknowledged (the counter counts deliveries, which trail the
    processed records), checked against what the events must emit."""
    while True:
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        emitted = int(sum(float(v) for v in re.findall(r"^radar_signals_emitted_total\{[^}]*\} ([0-9.e+]+)$", metrics, re.M)))
        if emitted >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if emitted != expected:
        raise SystemExit(f"the signals worker emitted {emitted} signals where the events make {expected}")
    writes = re.search(r"^radar_signals_state_writes_total ([0-9.e+]+)$", metrics, re.M)
    return f"{int(float(writes.group(1))) if writes else '?'} state writes, {emitted} signals as expected"


def signals_worker(
    bootstrap: str, prefix: str, count: int, workdir: Path, timeout: float, run: int = 1, store: str = "memory://"
) -> tuple[float, str]:
    """(c) the real worker; its processed-records counter is sampled every 20 ms. Each run is a new application (its
    own consumer group and changelog), so it starts from no state, as the first did."""
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RADAR_TOPIC_PREFIX": prefix,
        "RADAR_SIGNALS_APP_ID": f"{prefix}signals-{run}",
        "RADAR_SIGNALS_STORE": store,  # rocksdb:// keeps its tables under the scratch directory
        "RADAR_SIGNALS_PORT": str(port),
        "RADAR_LOG_LEVEL": "WARNING",
        "RADAR_LOG_FORMAT": "json",
    }
    log = workdir / "signals.log"
    process = run_process([sys.executable, "-m", "services.cli", "serve", "signals"], env, log)
    total = count + ACCOUNTS
    try:
        deadline = time.monotonic() + timeout
        started = first = 0.0
        while time.monotonic() < deadline:
            done = processed(port)
            now = time.perf_counter()
            if done and not started:
                started, first = now, done
            if done >= total:
                rate = (done - first) / (now - started) if now > started else float("nan")
                return rate, settled_output(port, expected_signals(count), deadline)
            if process.poll() is not None:
                raise SystemExit(f"signals worker exited:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.02)
        raise SystemExit(
            f"signals worker did not finish within {timeout}s (processed {processed(port):.0f} of {total}):\n"
            + log.read_text(errors="replace")[-3000:]
        )
    finally:
        stop(process)


def make_topics(bootstrap: str) -> tuple[str, Topics]:
    prefix = f"bench{uuid.uuid4().hex[:8]}-"
    settings = Settings(kafka_bootstrap_servers=bootstrap, radar_topic_prefix=prefix, radar_partitions=PARTITIONS)
    asyncio.run(ensure_topics(settings))
    return prefix, Topics.from_settings(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--request", type=int, default=100, help="events per ingest request, grouped per partition as ingest does (1 = one per record)"
    )
    parser.add_argument("--single-too", action="store_true", help="also run the signals worker on one event per record")
    parser.add_argument("--runs", type=int, default=3, help="runs of the bare loop and of the signals worker; ratios use the medians")
    parser.add_argument("--store", default="memory://", help="the worker's table store: memory:// or rocksdb:// (production's)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each worker may take")
    options = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS to the broker to measure on")
    single_prefix, single = make_topics(bootstrap)
    size = asyncio.run(produce_all(bootstrap, single, options.events))
    grouped_prefix, grouped = make_topics(bootstrap)
    asyncio.run(produce_all(bootstrap, grouped, options.events, options.request))
    print(f"{options.events} events (~{size:.0f} bytes each) over {ACCOUNTS} accounts, {PARTITIONS} partitions, broker {bootstrap}")
    runs = range(1, options.runs + 1)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bares = []
        for _ in runs:
            bares.append(asyncio.run(bare_loop(bootstrap, single, options.events)))
        bare = statistics.median(bares)
        print(f"(a) bare aiokafka consume-and-parse loop (1 event/record):  {bare:>10,.0f} events/s{spread(bares)}")
        naive = naive_agent(bootstrap, single, options.events, workdir, options.timeout)
        print(f"(b) naive Faust agent + table write/event (1 event/record): {naive:>10,.0f} events/s")
        if options.single_too:
            rate, detail = signals_worker(bootstrap, single_prefix, options.events, workdir, options.timeout)
            print(f"(c1) signals worker, 1 event/record:                        {rate:>10,.0f} events/s  ({detail})")
        rates, details = [], []
        for run in runs:
            rate, detail = signals_worker(bootstrap, grouped_prefix, options.events, workdir, options.timeout, run, options.store)
            rates.append(rate)
            details.append(detail)
        rate = statistics.median(rates)
        shape = f"requests of {options.request}, ~{options.request // PARTITIONS} events/record, {options.store}"
        print(f"(c) signals worker ({shape}):   {rate:>10,.0f} events/s{spread(rates)}")
        for run, (each, detail) in enumerate(zip(rates, details, strict=True), start=1):
            print(f"    run {run}: {each:>10,.0f} events/s  ({detail})")
        floor = floor_agent(bootstrap, grouped, options.events, workdir, options.timeout)
        print(f"(d) Faust's floor: the same records taken, not worked on:  {floor:>10,.0f} events/s")
    print(f"ratios: signals / bare = {rate / bare:.2f} (target >= 0.35, >= 0.3 over 600k); / naive = {rate / naive:.1f} (target >= 30)")
    print(f"  run by run: signals / bare = {each_over(rates, bare, 2)}; signals / naive = {each_over(rates, naive, 1)}")
    print(f"  Faust's floor / bare = {floor / bare:.2f}; signals / floor = {rate / floor:.2f}")
    print(f"target >= 100,000 events/s: {'met' if rate >= 100_000 else 'NOT met'}")


def each_over(rates: list[float], baseline: float, digits: int) -> str:
    return ", ".join(f"{rate / baseline:.{digits}f}" for rate in rates)


def spread(rates: list[float]) -> str:
    """The median is what the ratios use; the range says how noisy the machine was."""
    return f"  (median of {len(rates)}: {min(rates):,.0f} to {max(rates):,.0f})" if len(rates) > 1 else ""


if __name__ == "__main__":
    main()
