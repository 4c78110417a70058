"""Benchmark: `radar score --all` over N stored accounts (the issue's target: 100,000 in under a minute).

Creates a throw-away PostgreSQL database next to RADAR_TEST_DATABASE_URL, migrates it, stores N accounts
with realistic learnt state, and times the rescore. The baseline, measured in the same run on the same
database, is reading the same rows with the same keyset batches and writing them back unchanged: the
ratio is what scoring itself costs on top of moving the data.

    .venv/bin/python bench/scoring_rescore.py --accounts 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url

from services.config import RadarConfig
from services.scoring.adapters.tables import Account, Plan, Score
from services.scoring.domain.state import AccountState, UsageSnapshot
from services.scoring.entrypoints.rescore import rescore_all
from shared.db import create_engine, sessionmaker, upgrade_database

NOW = datetime(2026, 11, 10, tzinfo=UTC)


def state_for(index: int) -> dict:
    utilization = 0.5 + (index % 50) / 100
    state = AccountState(
        usage={"api_calls": UsageSnapshot(value=utilization * 1000, limit=1000, utilization=utilization, at=NOW)},
        domain_users=[f"u{i}@a{index}.example" for i in range(index % 4)],
        usage_signal_times=[NOW - timedelta(days=index % 40)],
        nps=float(index % 11) if index % 3 else None,
        csat=[3.5 + (index % 4) / 2] if index % 2 else [],
        ticket_times=[NOW - timedelta(days=d) for d in range(index % 5)],
        as_of=NOW,
    )
    return state.model_dump(mode="json")


async def seed(url: str, accounts: int) -> None:
    engine = create_engine(url)
    sessions = sessionmaker(engine)
    async with sessions.begin() as session:
        await session.execute(
            insert(Plan),
            [
                {
                    "plan_id": "starter",
                    "limits": {"api_calls": 1000, "seats": 10},
                    "price": 12_000,
                    "next_plan": "growth",
                    "updated_at": NOW,
                },
                {"plan_id": "growth", "limits": {"api_calls": 10_000, "seats": 50}, "price": 30_000, "next_plan": None, "updated_at": NOW},
            ],
        )
    for start in range(0, accounts, 5_000):
        rows = range(start, min(accounts, start + 5_000))
        async with sessions.begin() as session:
            await session.execute(
                insert(Account),
                [
                    {
                        "account_id": f"acct-{i:07d}",
                        "name": f"Account {i}",
                        "domains": [f"a{i}.example"],
                        "plan": "starter",
                        "limits": {"api_calls": 1000, "seats": 10},
                        "arr": 10_000 + (i % 20) * 5_000,
                        "owners": {"csm": f"csm{i % 7}@vendor.example", "ae": f"ae{i % 3}@vendor.example"},
                        "updated_at": NOW,
                    }
                    for i in rows
                ],
            )
            await session.execute(
                insert(Score),
                [
                    {"account_id": f"acct-{i:07d}", "score": 0, "tier": "low", "breakdown": {}, "inputs": state_for(i), "updated_at": NOW}
                    for i in rows
                ],
            )
    await engine.dispose()


async def copy_through(url: str, batch_size: int = 2_000) -> int:
    """The baseline: the same reads and writes without scoring."""
    engine = create_engine(url)
    sessions = sessionmaker(engine)
    done, after = 0, ""
    while True:
        async with sessions.begin() as session:
            rows = (
                await session.execute(
                    select(Score.account_id, Score.score, Score.tier, Score.inputs, Account)
                    .outerjoin(Account, Account.account_id == Score.account_id)
                    .where(Score.account_id > after)
                    .order_by(Score.account_id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                break
            updates = [{"account_id": r[0], "score": r[1], "tier": r[2], "breakdown": {}} for r in rows]
            await session.execute(update(Score), updates)
        done += len(rows)
        after = rows[-1][0]
    await engine.dispose()
    return done


async def main(accounts: int) -> None:
    admin = os.environ.get("RADAR_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    name = f"bench_rescore_{uuid.uuid4().hex[:8]}"
    admin_dsn = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin_dsn)
    await connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade_database, url)
        started = time.perf_counter()
        await seed(url, accounts)
        print(f"seeded {accounts} accounts in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        await copy_through(url)
        baseline = time.perf_counter() - started

        engine = create_engine(url)
        started = time.perf_counter()
        done, changed = await rescore_all(sessionmaker(engine), RadarConfig().scoring)
        rescore = time.perf_counter() - started
        await engine.dispose()
        print(f"baseline (read + write back, no scoring): {baseline:.1f} s, {accounts / baseline:,.0f} accounts/s")
        print(f"radar score --all: {done} rescored ({changed} changed) in {rescore:.1f} s, {done / rescore:,.0f} accounts/s")
        verdict = "met" if rescore * 100_000 / done < 60 else "MISSED"
        print(f"ratio rescore / baseline: {rescore / baseline:.2f}; target < 60 s for 100,000: {verdict}")
    finally:
        await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().accounts))
