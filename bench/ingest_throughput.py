"""Ingest throughput, one process, batches of 100, against bare aiokafka producers measured in the same run.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 DATABASE_URL=postgresql+asyncpg://... .venv/bin/python bench/ingest_throughput.py

(a) the baseline the target is stated against: a bare aiokafka producer (acks=all, as ingest) in this process sends
    the same pre-serialized events, `send()` per event (one record each) and one wait for the acks per batch of
    100, `--concurrency` batches in flight;
(a2) the same producer writing records as ingest does (shared/event_records.py): per batch, one record per
    partition holding the JSON array of that partition's events, so (b) / (a2) is ingest's own overhead;
(b) ingest as `radar serve ingest` runs it (uvicorn, one process): `POST /v1/events` with batches of 100 from
    `--concurrency` keep-alive connections (a minimal HTTP/1.1 client, so the load generator costs little of the
    machine's CPU), every event new (each request claims its ids in the dedupe record, produces one record per
    partition, and marks its claim produced).
Both use topics with the same partition count on the same broker. (b') is the CPU ingest itself used for (b), per
event (what one core of its own would carry), and what the broker, PostgreSQL and the load used beside it. Then (c),
in this process, the CPU cost of the request path's pure parts per batch (validate + serialize), to show where the
time goes.
Without DATABASE_URL a throwaway SQLite file is used (PostgreSQL is what production and the design's figures use).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.ingest.domain.events import parse_native  # noqa: E402
from shared.auth import KeyStore  # noqa: E402
from shared.db import create_engine, sessionmaker, upgrade_database  # noqa: E402
from shared.embedded_broker import free_port  # noqa: E402
from shared.event_records import group_events  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.topics import Topics  # noqa: E402

ACCOUNTS = 1_000
BATCH = 100


def kafka_and_postgres() -> tuple[str, str]:
    """The broker and the PostgreSQL database a benchmark of the whole stack runs on, from the environment."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database_url = os.environ.get("DATABASE_URL", "")
    if not bootstrap or not database_url.startswith("postgresql"):
        raise SystemExit(
            "set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL=postgresql+asyncpg://... (deploy/kafka.sh and postgres.sh print them)"
        )
    return bootstrap, database_url


def make_event(run: str, index: int) -> dict:
    return {
        "id": f"{run}-{index}",
        "type": "usage",
        "account_id": f"acct-{index % ACCOUNTS}",
        "timestamp": "2026-11-10T12:00:00Z",
        "metric": "api_calls",
        "quantity": 1 + index % 7,
    }


def batches(run: str, total: int) -> list[list[dict]]:
    return [[make_event(run, start + n) for n in range(BATCH)] for start in range(0, total, BATCH)]


# ----------------------------------------------------------------------------- (a) bare producer


async def bare_producer(bootstrap: str, topic: str, work: list[list[dict]], concurrency: int, grouped: bool = False) -> float:
    """(a) `send()` per event, one wait for the acks per batch; (a2) with `grouped`, the same batches written as
    ingest writes usage-events: one record per partition per batch (shared/event_records.py)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=256 * 1024)
    await producer.start()
    partitions = len(await producer.partitions_for(topic))
    # (key, value, partition): no partition for a plain keyed send, so the producer's partitioner picks it
    queue: asyncio.Queue[list[tuple[bytes | None, bytes, int | None]]] = asyncio.Queue()
    for batch in work:
        events = [(event["account_id"], orjson.dumps(event)) for event in batch]
        if grouped:
            queue.put_nowait([(record.key, record.value, record.partition) for record in group_events(events, partitions)])
        else:
            queue.put_nowait([(account.encode(), value, None) for account, value in events])

    async def worker() -> None:
        while not queue.empty():
            records = queue.get_nowait()
            futures = [await producer.send(topic, value=value, key=key, partition=partition) for key, value, partition in records]
            await asyncio.gather(*futures)

    try:
        await asyncio.gather(*(producer.send_and_wait(topic, value=b"{}", key=b"warm") for _ in range(10)))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return sum(len(batch) for batch in work) / elapsed


# ----------------------------------------------------------------------------- (b) ingest over HTTP


async def post_events(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str, body: bytes) -> tuple[int, bytes]:
    """One `POST /v1/events` on a keep-alive connection: the answer's status code and body."""
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return int(status_line.split()[1]), await reader.readexactly(length)


async def post_all(port: int, key: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    """Keep-alive HTTP/1.1 by hand: the server, not the client, should be what is measured."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                body = queue.get_nowait()
                sent = time.perf_counter()
                status, _answer = await post_events(reader, writer, key, body)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


async def prepare(settings: Settings) -> str:
    await ensure_topics(settings)
    engine = create_engine(settings.database_url)
    try:
        return (await KeyStore(sessionmaker(engine)).create("bench")).plaintext
    finally:
        await engine.dispose()


def run_service(env: dict[str, str], port: int, workdir: Path, name: str = "ingest") -> subprocess.Popen[bytes]:
    """`radar serve NAME` as its own process (log in `workdir`), once its /readyz on `port` answers 200."""
    log = (workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", name],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}: {(workdir / f'{name}.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    process.terminate()
    raise SystemExit(f"{name} did not become ready in 90 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu(ingest_pid: int) -> dict[str, float]:
    """CPU used so far by each tenant of the machine: ingest, PostgreSQL (its processes), the broker (the JVM or
    Tansu) and this process (the load). A process that ends in between is not counted, so the figures are floors."""
    used = {"ingest": cpu_seconds(ingest_pid), "PostgreSQL": 0.0, "broker": 0.0, "load": sum(os.times()[:2])}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"postgres" in command.split(b" ", 1)[0]:
                used["PostgreSQL"] += cpu_seconds(int(proc.name))
            elif b"kafka.Kafka" in command or b"tansu" in command:
                used["broker"] += cpu_seconds(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return used


# ----------------------------------------------------------------------------- (c) pure parts


def pure_cost_per_batch(bodies: list[bytes]) -> float:
    started = time.perf_counter()
    for body in bodies:
        parse_native(body)
    return (time.perf_counter() - started) / len(bodies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=16, help="batches (connections) in flight")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS (deploy/kafka.sh start DIR prints it)")
    workdir = Path(tempfile.mkdtemp(prefix="radar-bench-ingest-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{workdir}/radar.db"
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "RADAR_TOPIC_PREFIX": f"bench{tag}-",
        "RADAR_PARTITIONS": str(args.partitions),
        "RADAR_INGEST_PORT": str(port),
        "RADAR_LOG_FORMAT": "json",
        "RADAR_LOG_LEVEL": "WARNING",
    }
    settings = Settings(
        kafka_bootstrap_servers=bootstrap, database_url=database_url, radar_topic_prefix=f"bench{tag}-", radar_partitions=args.partitions
    )
    upgrade_database(database_url)
    key = asyncio.run(prepare(settings))
    baseline_topic = Topics(f"bench{tag}-bare-").usage_events
    asyncio.run(
        ensure_topics(settings, [spec for spec in Topics(f"bench{tag}-bare-").specs(args.partitions) if spec.name == baseline_topic])
    )

    work = batches(f"{tag}-bare", args.events)
    print(
        f"{args.events} events in batches of {BATCH}, {args.concurrency} in flight, "
        f"{args.partitions} partitions, db {database_url.split(':')[0]}"
    )
    bare_rate = asyncio.run(bare_producer(bootstrap, baseline_topic, work, args.concurrency))
    print(f"(a) bare aiokafka producer:          {bare_rate:>10,.0f} events/s  (one record per event)")
    grouped_rate = asyncio.run(
        bare_producer(bootstrap, baseline_topic, batches(f"{tag}-grouped", args.events), args.concurrency, grouped=True)
    )
    print(f"(a2) bare producer, grouped records: {grouped_rate:>10,.0f} events/s  (one record per partition per batch, as ingest)")

    process = run_service(env, port, workdir)
    try:
        warm = [orjson.dumps({"events": batch}) for batch in batches(f"{tag}-warm", 20 * BATCH)]
        asyncio.run(post_all(port, key, warm, args.concurrency))
        bodies = [orjson.dumps({"events": batch}) for batch in batches(f"{tag}-http", args.events)]
        cpu_before = machine_cpu(process.pid)
        elapsed, latencies, statuses = asyncio.run(post_all(port, key, bodies, args.concurrency))
        cpu_used = {tenant: seconds - cpu_before[tenant] for tenant, seconds in machine_cpu(process.pid).items()}
    finally:
        process.terminate()
        process.wait(30)
    accepted = statuses.get(202, 0) * BATCH
    ingest_rate = accepted / elapsed
    latencies.sort()
    print(
        f"(b) ingest, POST /v1/events:         {ingest_rate:>10,.0f} events/s  ({accepted} accepted; statuses {statuses}; "
        f"request p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms)"
    )
    print(f"ratio ingest / (a):                  {ingest_rate / bare_rate:>10.2f}   (target >= 0.5, and >= 50,000 events/s)")
    print(f"ratio ingest / (a2):                 {ingest_rate / grouped_rate:>10.2f}")
    ingest_cpu = cpu_used["ingest"]
    print(
        f"(b') ingest's own CPU:                {ingest_cpu / accepted * 1e6:>10.1f} µs an event   "
        f"(= {accepted / ingest_cpu:,.0f} events/s per core of its own; busy {ingest_cpu / elapsed:.0%} of the run)"
    )
    shares = ", ".join(
        f"{tenant} {seconds / accepted * 1e6:.1f} µs ({seconds / elapsed:.0%} of a core)" for tenant, seconds in cpu_used.items()
    )
    print(f"     the machine's CPU per event during (b): {shares}; {os.cpu_count()} cores")
    per_batch = pure_cost_per_batch(bodies[:500])
    print(
        f"(c) validate + serialize a batch:    {per_batch * 1e6:>10,.0f} µs   (= {BATCH / per_batch:,.0f} events/s on one core "
        "before HTTP, auth, dedupe and Kafka)"
    )


if __name__ == "__main__":
    main()
