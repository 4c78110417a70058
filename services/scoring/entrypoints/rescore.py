"""`radar score --all`: every stored account rescored with the current config (handlers.rescore_all) over the
command's own database connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring import handlers
from services.scoring.adapters.repository import ScoringRepository
from services.scoring.adapters.transactions import units_of_work
from services.scoring.domain.config import ScoringConfig


async def count_scores(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with units_of_work(sessions, ScoringRepository)() as repository:
        return await repository.count_scores()


async def rescore_all(
    sessions: async_sessionmaker[AsyncSession],
    config: ScoringConfig,
    progress: handlers.Progress = lambda _done: None,
    batch_size: int = 2_000,
) -> tuple[int, int]:
    """Returns (accounts rescored, accounts whose score or tier changed)."""
    return await handlers.rescore_all(units_of_work(sessions, ScoringRepository), config, progress, batch_size)
