"""The accounts and plans ingest declared (ingest_declarations): what GET reads back and the base group calls merge into."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.adapters.tables import IngestDeclaration
from shared.db import insert_for

ACCOUNT = "account"  # the `kind` of a declaration row
PLAN = "plan"


class DeclarationStore:
    """The last account/plan ingest published, as published; newer `updated_at` wins across processes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(IngestDeclaration, (kind, entity_id))
        return dict(row.payload) if row else None

    async def get_many(self, kind: str, entity_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(set(entity_ids))
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = await session.scalars(
                select(IngestDeclaration).where(IngestDeclaration.kind == kind, IngestDeclaration.entity_id.in_(ids))
            )
            return {row.entity_id: dict(row.payload) for row in rows}

    async def all(self, kind: str) -> list[dict[str, Any]]:
        """Every declaration of `kind`, oldest first: what a broker that lost its topics is given again."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(IngestDeclaration).where(IngestDeclaration.kind == kind).order_by(IngestDeclaration.updated_at)
            )
            return [dict(row.payload) for row in rows]

    async def put(self, kind: str, items: Sequence[tuple[str, dict[str, Any], datetime]]) -> None:
        if not items:
            return
        async with self._sessions.begin() as session:
            for entity_id, payload, updated_at in items:
                statement = insert_for(session, IngestDeclaration).values(
                    kind=kind, entity_id=entity_id, payload=payload, updated_at=updated_at
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["kind", "entity_id"],
                        set_={"payload": statement.excluded.payload, "updated_at": statement.excluded.updated_at},
                        where=IngestDeclaration.updated_at <= statement.excluded.updated_at,
                    )
                )
