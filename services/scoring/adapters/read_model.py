"""The read API's queries: accounts ranked and filtered in SQL, one account with its open alerts and signals, the
score history. Open means not closed by the notifier (its notifier_closed_alerts table, which scoring may read)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import Account, AlertRecord, Score, ScoreHistory, SignalRecord
from shared.db import ClosedAlert

OPEN_ALERTS = 20
TIMELINE = 100
ORDERING: dict[str, tuple[UnaryExpression[Any], UnaryExpression[Any]]] = {
    "score": (Score.score.desc(), Score.account_id.asc()),
    "expansion_arr": (Score.expansion_arr.desc().nulls_last(), Score.account_id.asc()),
    "health": (Score.health.asc().nulls_last(), Score.account_id.asc()),
    "updated": (Score.updated_at.desc(), Score.account_id.asc()),
}


async def accounts_page(
    session: AsyncSession, tier: str | None, owner: str | None, order: str, limit: int, offset: int
) -> tuple[list[tuple[Score, str | None]], int]:
    """(score, account name) rows of one page, and the total matching the filters."""
    filters: list[ColumnElement[bool]] = []
    if tier is not None:
        filters.append(Score.tier == tier)
    if owner is not None:
        filters.append(Score.owner == owner)
    statement = (
        select(Score, Account.name)
        .outerjoin(Account, Account.account_id == Score.account_id)
        .where(*filters)
        .order_by(*ORDERING[order])
        .limit(limit)
        .offset(offset)
    )
    rows: list[tuple[Score, str | None]] = [(score, name) for score, name in (await session.execute(statement)).all()]
    total = await session.scalar(select(func.count()).select_from(Score).where(*filters)) or 0
    return rows, total


@dataclass(frozen=True)
class AccountRecords:
    score: Score | None
    account: Account | None
    open_alerts: Sequence[AlertRecord]  # newest first
    signals: Sequence[SignalRecord]  # newest first


async def account_records(session: AsyncSession, account_id: str) -> AccountRecords:
    score = await session.get(Score, account_id)
    account = await session.get(Account, account_id)
    alerts = (
        await session.scalars(
            select(AlertRecord)
            .where(AlertRecord.account_id == account_id, ~exists().where(ClosedAlert.alert_id == AlertRecord.alert_id))
            .order_by(AlertRecord.created_at.desc())
            .limit(OPEN_ALERTS)
        )
    ).all()
    signals = (
        await session.scalars(
            select(SignalRecord).where(SignalRecord.account_id == account_id).order_by(SignalRecord.received_at.desc()).limit(TIMELINE)
        )
    ).all()
    return AccountRecords(score, account, alerts, signals)


async def score_history(session: AsyncSession, account_id: str, limit: int, offset: int) -> tuple[bool, Sequence[ScoreHistory]]:
    """(whether the account has a score, one page of its history newest first)."""
    known = await session.get(Score, account_id)
    rows = (
        await session.scalars(
            select(ScoreHistory)
            .where(ScoreHistory.account_id == account_id)
            .order_by(ScoreHistory.created_at.desc(), ScoreHistory.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return known is not None, rows
