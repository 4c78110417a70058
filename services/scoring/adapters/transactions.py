"""What scoring's and outcomes' repositories share: the unit of work handlers are given (each call one transaction
and its repository) and whether a read may lock rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

R = TypeVar("R")
UnitOfWork = Callable[[], AbstractAsyncContextManager[R]]


def units_of_work(sessions: async_sessionmaker[AsyncSession], repository: Callable[[AsyncSession], R]) -> UnitOfWork[R]:
    @asynccontextmanager
    async def unit() -> AsyncIterator[R]:
        async with sessions.begin() as session:
            yield repository(session)

    return unit


def locks_rows(session: AsyncSession) -> bool:
    """SELECT … FOR UPDATE where the database has it (PostgreSQL; SQLite serialises writers anyway)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"
