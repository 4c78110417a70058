"""Benchmark: the web console's accounts page over 10,000 accounts (the issue's target: < 300 ms p95, paginated).

Creates a throw-away PostgreSQL database next to RADAR_TEST_DATABASE_URL (or DATABASE_URL), migrates it, stores
N scored accounts with a score history and signals each, starts `radar serve scoring` (it needs Kafka:
KAFKA_BOOTSTRAP_SERVERS), logs in like a browser and requests pages of /ui/accounts (first, middle, last, with
and without filters) one after another. The baseline, measured in the same run against the same service, is
the JSON `GET /v1/accounts` of the same page size and offset, with the same tier or owner filter (the API has no
segment or search filter: those pages are compared with the unfiltered one at their offset): the ratio is what the
console's extra reads (trends, last signals, owners) and rendering cost on top of the read API.

    KAFKA_BOOTSTRAP_SERVERS=... RADAR_TEST_DATABASE_URL=... .venv/bin/python bench/console_accounts.py --accounts 10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import insert
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from end_to_end_latency import percentile  # noqa: E402 (this directory)
from ingest_throughput import run_service  # noqa: E402 (this directory)
from signals_throughput import stop  # noqa: E402 (this directory)

from services.scoring.adapters.tables import Account, Score, ScoreHistory, SignalRecord  # noqa: E402
from services.scoring.entrypoints.console.views import PAGE_SIZE  # noqa: E402
from shared.auth import KeyStore  # noqa: E402
from shared.db import create_engine, sessionmaker, upgrade_database  # noqa: E402
from shared.embedded_broker import free_port  # noqa: E402

NOW = datetime(2026, 11, 10, tzinfo=UTC)
TIERS = ("immediate", "short_term", "medium_term", "low")
HISTORY = 12  # score history rows per account (the sparkline reads the last 20)
SIGNALS = 3


def breakdown_for(index: int, score: int) -> dict:
    return {
        "model": "weighted",
        "score": score,
        "tier": TIERS[index % 4],
        "action": "reach out",
        "missing": [],
        "factors": [
            {"factor": "usage_pressure", "weight": 40, "points": round(score * 0.4, 2), "detail": f"api_calls at {50 + index % 50}%"},
            {"factor": "growth", "weight": 30, "points": round(score * 0.3, 2), "detail": "usage up week over week"},
            {"factor": "health", "weight": 30, "points": round(score * 0.3, 2), "detail": "NPS 8"},
        ],
    }


def signal_payload(index: int, number: int) -> dict:
    return {
        "signal_id": f"s-{index}-{number}",
        "type": "usage_threshold_crossed",
        "account_id": f"acct-{index:06d}",
        "metric": "api_calls",
        "value": 800 + number * 50,
        "limit": 1000,
        "utilization": 0.8 + number * 0.05,
        "threshold": 0.8,
        "period": "2026-11-01",
        "event_id": f"e-{index}-{number}",
        "event_timestamp": (NOW - timedelta(days=SIGNALS - number)).isoformat(),
        "emitted_at": NOW.isoformat(),
    }


async def seed(url: str, accounts: int, progress: Progress) -> str:
    """N accounts, their scores, HISTORY score rows and SIGNALS signals each; returns a read key."""
    engine = create_engine(url)
    sessions = sessionmaker(engine)
    task = progress.add_task("seeding accounts", total=accounts)
    chunk = 1_000
    for start in range(0, accounts, chunk):
        rows = range(start, min(accounts, start + chunk))
        async with sessions.begin() as session:
            await session.execute(
                insert(Account),
                [
                    {
                        "account_id": f"acct-{i:06d}",
                        "name": f"Account {i} Ltd",
                        "domains": [f"a{i}.example"],
                        "plan": "starter",
                        "limits": {"api_calls": 1000, "seats": 10},
                        "arr": 5_000 + (i % 40) * 5_000,
                        "owners": {"csm": f"csm{i % 7}@vendor.example"},
                        "updated_at": NOW,
                    }
                    for i in rows
                ],
            )
            await session.execute(
                insert(Score),
                [
                    {
                        "account_id": f"acct-{i:06d}",
                        "score": (i * 37) % 101,
                        "tier": TIERS[i % 4],
                        "breakdown": breakdown_for(i, (i * 37) % 101),
                        "inputs": {},
                        "updated_at": NOW,
                        "owner": f"csm{i % 7}@vendor.example",
                        "health": 70.0,
                        "expansion_arr": 1_000.0 * (i % 30),
                    }
                    for i in rows
                ],
            )
            await session.execute(
                insert(ScoreHistory),
                [
                    {
                        "account_id": f"acct-{i:06d}",
                        "score": max(0, (i * 37) % 101 - (HISTORY - h) * 2),
                        "tier": TIERS[i % 4],
                        "breakdown": {},
                        "signal_id": None,
                        "created_at": NOW - timedelta(hours=HISTORY - h),
                    }
                    for i in rows
                    for h in range(HISTORY)
                ],
            )
            await session.execute(
                insert(SignalRecord),
                [
                    {
                        "signal_id": f"s-{i}-{n}",
                        "account_id": f"acct-{i:06d}",
                        "type": "usage_threshold_crossed",
                        "payload": signal_payload(i, n),
                        "received_at": NOW - timedelta(days=SIGNALS - n),
                    }
                    for i in rows
                    for n in range(SIGNALS)
                ],
            )
        progress.advance(task, len(rows))
    async with engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")
    key = (await KeyStore(sessions).create("bench", ["read"])).plaintext
    await engine.dispose()
    return key


def measure(base: str, key: str, accounts: int, requests: int, progress: Progress) -> tuple[list[float], list[float]]:
    """Alternates console and JSON requests over the same pages, so both see the same database and caches."""
    pages = max(1, -(-accounts // PAGE_SIZE))
    variants: list[dict[str, str | int]] = [
        {"page": 1},
        {"page": max(1, pages // 2)},
        {"page": pages},
        {"tier": "immediate", "page": 3},
        {"segment": "enterprise", "page": 2},
        {"q": "Account 42", "page": 1},
        {"owner": "csm3@vendor.example", "page": 2},
    ]
    console, api = [], []
    task = progress.add_task("requesting pages", total=requests)
    with httpx.Client(base_url=base, timeout=30) as browser, httpx.Client(base_url=base, timeout=30) as client:
        login = browser.post("/ui/login", data={"key": key}, follow_redirects=False)
        if login.status_code != 303:
            raise SystemExit(f"login failed: {login.status_code} {login.text[:300]}")
        headers = {"Authorization": f"Bearer {key}"}
        for warm in range(5):  # connection set-up and first-query plans are not what a user waits on at scale
            browser.get("/ui/accounts", params=variants[warm % len(variants)])
            client.get("/v1/accounts", params={"limit": PAGE_SIZE}, headers=headers)
        for index in range(requests):
            variant = variants[index % len(variants)]
            started = time.perf_counter()
            page = browser.get("/ui/accounts", params=variant)
            console.append(time.perf_counter() - started)
            if page.status_code != 200 or "acct-" not in page.text:
                raise SystemExit(f"{page.url} answered {page.status_code}: {page.text[:300]}")
            same_filters = {name: value for name, value in variant.items() if name in ("tier", "owner")}
            params = {"limit": PAGE_SIZE, "offset": (int(variant["page"]) - 1) * PAGE_SIZE, **same_filters}
            started = time.perf_counter()
            answer = client.get("/v1/accounts", params=params, headers=headers)
            api.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise SystemExit(f"/v1/accounts answered {answer.status_code}: {answer.text[:300]}")
            progress.advance(task)
    return console, api


async def create_database(admin: str) -> str:
    name = f"bench_console_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin: str, url: str) -> None:
    connection = await asyncpg.connect(make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300, help="console requests (and as many JSON ones)")
    args = parser.parse_args()
    admin = os.environ.get("RADAR_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not admin or not bootstrap:
        raise SystemExit("set RADAR_TEST_DATABASE_URL (or DATABASE_URL) to a PostgreSQL admin URL and KAFKA_BOOTSTRAP_SERVERS")
    url = asyncio.run(create_database(admin))
    port, tag = free_port(), uuid.uuid4().hex[:8]
    process = None
    try:
        asyncio.run(asyncio.to_thread(upgrade_database, url))
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns) as progress:
            key = asyncio.run(seed(url, args.accounts, progress))
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "RADAR_TOPIC_PREFIX": f"bench-{tag}-",
                "RADAR_CONSUMER_GROUP_PREFIX": f"bench-{tag}",
                "RADAR_SCORING_PORT": str(port),
                "RADAR_LOG_FORMAT": "json",
                "RADAR_LOG_LEVEL": "WARNING",
            }
            workdir = Path(tempfile.mkdtemp(prefix="bench-console-"))
            process = run_service(env, port, workdir, "scoring")
            console, api = measure(f"http://127.0.0.1:{port}", key, args.accounts, args.requests, progress)
        ms = lambda seconds: f"{seconds * 1000:.1f} ms"  # noqa: E731
        print(f"\n{args.accounts:,} accounts, {PAGE_SIZE} a page, {len(console)} requests each (sequential, one client)")
        print(f"  console /ui/accounts : p50 {ms(percentile(console, 0.5))}  p95 {ms(percentile(console, 0.95))}  max {ms(max(console))}")
        print(f"  JSON /v1/accounts    : p50 {ms(percentile(api, 0.5))}  p95 {ms(percentile(api, 0.95))}  max {ms(max(api))}")
        ratio = percentile(console, 0.95) / percentile(api, 0.95)
        verdict = "within" if percentile(console, 0.95) < 0.3 else "OVER"
        print(f"  ratio (p95 console / p95 JSON): {ratio:.2f} x; target p95 < 300 ms: {verdict}")
    finally:
        if process is not None:
            stop(process)
        asyncio.run(drop_database(admin, url))


if __name__ == "__main__":
    main()
