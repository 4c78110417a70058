"""Migrations run on PostgreSQL and SQLite alike; key management through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import inspect

from shared.db import create_engine

TABLES = {
    "api_keys",
    "ingested_events",
    "accounts",
    "scores",
    "score_history",
    "signals",
    "alerts",
    "outbox_alerts",
    "deliveries",
    "plans",  # scoring (0004)
    "notifier_attention",  # notifier (0005)
    "ingest_declarations",  # ingest (0006)
    "notifier_open_topics",
    "notifier_closed_alerts",
    "notifier_outreach",
    "opportunities",  # outcomes (0007)
    "opportunity_stage_changes",
    "revenue_changes",
    "outcome_alerts",
    "ingest_produced_claims",  # ingest (0009)
    "applied_alert_actions",  # scoring (0011)
    "alembic_version",
}


async def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrations_create_the_schema_on_postgresql(database_url: str) -> None:
    assert await tables(database_url) == TABLES


async def test_migrations_create_the_schema_on_sqlite(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'radar.db'}"
    for _ in range(2):  # the second run finds nothing to do
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "db", "upgrade"],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    assert await tables(url) == TABLES


def test_keys_are_created_listed_and_revoked(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200"}

    def radar(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True, timeout=60)

    created = radar("keys", "create", "ci-bot")
    assert created.returncode == 0 and created.stdout.strip().startswith("rdr_")
    listed = radar("keys", "list")
    assert "ci-bot" in listed.stdout and created.stdout.strip() not in listed.stdout
    assert radar("keys", "revoke", "ci-bot").returncode == 0
    assert radar("keys", "revoke", "ci-bot").returncode == 1
    assert radar("keys", "create", "x", "--scope", "everything").returncode == 2
