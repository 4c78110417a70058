"""Scoring's HTTP entrypoint: ops endpoints and the read API over accounts, scores, history and alerts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import exists, func, select

from services.scoring.adapters.tables import Account, AlertRecord, Score, ScoreHistory, SignalRecord
from services.scoring.bootstrap import ScoringRuntime
from services.scoring.console.routes import install_console
from services.scoring.domain import AccountState
from services.scoring.outcomes_api import outcomes_router
from shared.auth import Principal, require_scope
from shared.db import ClosedAlert
from shared.observability import service_app
from shared.schemas import Alert, Signal, Tier, UsageLine

# PostgreSQL text cannot hold NUL: refuse it at the edge (422) instead of failing in the query (500)
NO_NUL = r"^[^\x00]+$"
AccountId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


class Order(StrEnum):
    score = "score"
    expansion_arr = "expansion_arr"
    health = "health"
    updated = "updated"


class AccountSummary(BaseModel):
    account_id: str
    name: str
    score: int
    tier: Tier
    health: float | None
    expansion_arr: float | None
    owner: str | None
    updated_at: datetime


class AccountPage(BaseModel):
    items: list[AccountSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class AccountDetail(BaseModel):
    account_id: str
    name: str
    plan: str | None
    arr: float | None
    owners: dict[str, Any]
    score: int | None
    tier: Tier | None
    health: float | None
    expansion_arr: float | None
    breakdown: dict[str, Any] | None
    limits: dict[str, float]
    usage: list[UsageLine]
    open_alerts: list[Alert]
    signals: list[Signal]


class HistoryEntry(BaseModel):
    score: int
    tier: Tier
    health: float | None
    signal_id: str | None
    breakdown: dict[str, Any]
    created_at: datetime


class HistoryPage(BaseModel):
    account_id: str
    items: list[HistoryEntry]
    limit: int
    offset: int


ORDERING = {
    Order.score: (Score.score.desc(), Score.account_id),
    Order.expansion_arr: (Score.expansion_arr.desc().nulls_last(), Score.account_id),
    Order.health: (Score.health.asc().nulls_last(), Score.account_id),
    Order.updated: (Score.updated_at.desc(), Score.account_id),
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, unknown or revoked API key"},
    403: {"description": "the key lacks the 'read' scope"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {**AUTH_RESPONSES, 404: {"description": "unknown account"}}
OPEN_ALERTS = 20
TIMELINE = 100


def create_app(runtime: ScoringRuntime) -> FastAPI:
    app = service_app("scoring", runtime)

    async def reader(request: Request) -> Principal:
        return await require_scope(request, runtime.keys, "read")

    @app.get("/v1/accounts", response_model=AccountPage, responses=AUTH_RESPONSES)
    async def list_accounts(
        tier: Tier | None = None,
        owner: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)] = None,
        order: Order = Order.score,
        limit: Limit = 50,
        offset: Offset = 0,
        _principal: Principal = Depends(reader),
    ) -> AccountPage:
        """Accounts ranked (by readiness score unless `order` says otherwise); the top 10 targets is `?limit=10`."""
        filters = []
        if tier is not None:
            filters.append(Score.tier == tier.value)
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
        async with runtime.sessions() as session:
            rows = (await session.execute(statement)).all()
            total = await session.scalar(select(func.count()).select_from(Score).where(*filters)) or 0
        items = [
            AccountSummary(
                account_id=score.account_id,
                name=name or score.account_id,
                score=score.score,
                tier=Tier(score.tier),
                health=score.health,
                expansion_arr=score.expansion_arr,
                owner=score.owner,
                updated_at=score.updated_at,
            )
            for score, name in rows
        ]
        following = offset + len(items)
        return AccountPage(items=items, total=total, limit=limit, offset=offset, next_offset=following if following < total else None)

    @app.get("/v1/accounts/{account_id}", response_model=AccountDetail, responses=NOT_FOUND)
    async def get_account(account_id: AccountId, _principal: Principal = Depends(reader)) -> AccountDetail:
        """Score, breakdown, health, limits and usage, the latest open alerts (not done or dismissed) and the timeline of signals."""
        async with runtime.sessions() as session:
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
                    select(SignalRecord)
                    .where(SignalRecord.account_id == account_id)
                    .order_by(SignalRecord.received_at.desc())
                    .limit(TIMELINE)
                )
            ).all()
        if score is None and account is None:
            raise HTTPException(status_code=404, detail=f"no account {account_id!r} is known")
        state = AccountState.model_validate(score.inputs or {}) if score else AccountState()
        return AccountDetail(
            account_id=account_id,
            name=account.name if account else account_id,
            plan=account.plan if account else None,
            arr=account.arr if account else None,
            owners=dict(account.owners or {}) if account else {},
            score=score.score if score else None,
            tier=Tier(score.tier) if score else None,
            health=score.health if score else None,
            expansion_arr=score.expansion_arr if score else None,
            breakdown=dict(score.breakdown) if score else None,
            limits=dict(account.limits or {}) if account else {},
            usage=[
                UsageLine(metric=metric, value=u.value, limit=u.limit, utilization=u.utilization)
                for metric, u in sorted(state.usage.items())
            ],
            open_alerts=[Alert.model_validate(alert.payload) for alert in alerts],
            signals=[Signal.model_validate(signal.payload) for signal in signals],
        )

    @app.get("/v1/accounts/{account_id}/score-history", response_model=HistoryPage, responses=NOT_FOUND)
    async def score_history(
        account_id: AccountId, limit: Limit = 100, offset: Offset = 0, _principal: Principal = Depends(reader)
    ) -> HistoryPage:
        """Every score the account had, newest first."""
        async with runtime.sessions() as session:
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
        if known is None:
            raise HTTPException(status_code=404, detail=f"no score for account {account_id!r} yet")
        return HistoryPage(
            account_id=account_id,
            items=[
                HistoryEntry(
                    score=row.score,
                    tier=Tier(row.tier),
                    health=row.health,
                    signal_id=row.signal_id,
                    breakdown=dict(row.breakdown),
                    created_at=row.created_at,
                )
                for row in rows
            ],
            limit=limit,
            offset=offset,
        )

    app.include_router(outcomes_router(runtime, reader))  # opportunities and /v1/metrics/*
    install_console(app, runtime)  # the web console under /ui
    return app
