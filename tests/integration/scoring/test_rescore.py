"""`radar score --all` against PostgreSQL: a config change rescoring the stored base, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from services.scoring.adapters.tables import Account, Score, ScoreHistory
from services.scoring.domain.state import AccountState, UsageSnapshot
from shared.db import create_engine, sessionmaker

NOW = datetime(2026, 11, 10, tzinfo=UTC)


def state(utilization: float) -> dict:
    usage = {"api_calls": UsageSnapshot(value=utilization * 1000, limit=1000, utilization=utilization, at=NOW)}
    return AccountState(usage=usage, usage_signal_times=[NOW], as_of=NOW).model_dump(mode="json")


async def test_score_all_rescores_every_account_with_the_new_config(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    async with sessions.begin() as session:
        await session.execute(
            insert(Account),
            [{"account_id": a, "name": a, "domains": [], "limits": {}, "arr": 50_000, "owners": {}, "updated_at": NOW} for a in "abc"],
        )
        await session.execute(
            insert(Score),
            [
                # readiness scores as the service stored them: usage alone is known, so 96 % and 85 % both score 100
                {"account_id": "a", "score": 100, "tier": "immediate", "breakdown": {}, "inputs": state(0.96), "updated_at": NOW},
                {"account_id": "b", "score": 100, "tier": "immediate", "breakdown": {}, "inputs": state(0.85), "updated_at": NOW},
                {"account_id": "c", "score": 100, "tier": "immediate", "breakdown": {}, "inputs": state(0.5), "updated_at": NOW},
            ],
        )
    config = tmp_path / "radar.yaml"
    config.write_text("scoring:\n  model: opportunity\n")
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "score", "--all"],
        env={**os.environ, "DATABASE_URL": database_url, "RADAR_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "rescored 3 account(s) with the opportunity model; 3 changed" in result.stderr
    async with sessions() as session:
        scores = dict((await session.execute(select(Score.account_id, Score.score))).all())
        history = await session.scalar(select(func.count()).select_from(ScoreHistory))
        breakdown = await session.scalar(select(Score.breakdown).where(Score.account_id == "a"))
    await engine.dispose()
    # opportunity: usage 96 % → 10 and ARR at the segment average → 5: 7.5 → 8; 85 % → 6 and 5: 5.5 → 6; 50 % → 4 and 5: 4.5 → 5
    assert scores == {"a": 80, "b": 60, "c": 50}
    assert history == 3
    assert breakdown["model"] == "opportunity" and breakdown["action"] == "8/10: immediate expansion conversation"


def test_score_without_all_says_what_to_do() -> None:
    result = subprocess.run([sys.executable, "-m", "services.cli", "score"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "radar score --all" in result.stderr
