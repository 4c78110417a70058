"""Scoring's HTTP entrypoint: the app (ops endpoints, the read API over accounts, scores, history and alerts,
outcomes' routes, the web console under /ui). Thin: queries in adapters/read_model.py."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from pydantic import BaseModel

from services.scoring.adapters import read_model
from services.scoring.bootstrap import ScoringRuntime
from services.scoring.domain.state import AccountState
from services.scoring.entrypoints.console.routes import install_console
from services.scoring.entrypoints.deps import reader, runtime_of
from services.scoring.outcomes.entrypoints.http import router as outcomes_router
from shared.auth import Principal
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


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, unknown or revoked API key"},
    403: {"description": "the key lacks the 'read' scope"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {**AUTH_RESPONSES, 404: {"description": "unknown account"}}

router = APIRouter()


@router.get("/v1/accounts", response_model=AccountPage, responses=AUTH_RESPONSES)
async def list_accounts(
    request: Request,
    tier: Tier | None = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)] = None,
    order: Order = Order.score,
    limit: Limit = 50,
    offset: Offset = 0,
    _principal: Principal = Depends(reader),
) -> AccountPage:
    """Accounts ranked (by readiness score unless `order` says otherwise); the top 10 targets is `?limit=10`."""
    async with runtime_of(request).sessions() as session:
        rows, total = await read_model.accounts_page(session, tier.value if tier else None, owner, order.value, limit, offset)
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


@router.get("/v1/accounts/{account_id}", response_model=AccountDetail, responses=NOT_FOUND)
async def get_account(request: Request, account_id: AccountId, _principal: Principal = Depends(reader)) -> AccountDetail:
    """Score, breakdown, health, limits and usage, the latest open alerts (not done or dismissed) and the timeline of signals."""
    async with runtime_of(request).sessions() as session:
        found = await read_model.account_records(session, account_id)
    score, account = found.score, found.account
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
            UsageLine(metric=metric, value=u.value, limit=u.limit, utilization=u.utilization) for metric, u in sorted(state.usage.items())
        ],
        open_alerts=[Alert.model_validate(alert.payload) for alert in found.open_alerts],
        signals=[Signal.model_validate(signal.payload) for signal in found.signals],
    )


@router.get("/v1/accounts/{account_id}/score-history", response_model=HistoryPage, responses=NOT_FOUND)
async def score_history(
    request: Request, account_id: AccountId, limit: Limit = 100, offset: Offset = 0, _principal: Principal = Depends(reader)
) -> HistoryPage:
    """Every score the account had, newest first."""
    async with runtime_of(request).sessions() as session:
        known, rows = await read_model.score_history(session, account_id, limit, offset)
    if not known:
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


def create_app(runtime: ScoringRuntime) -> FastAPI:
    app = service_app("scoring", runtime)
    app.state.runtime = runtime
    app.include_router(router)
    app.include_router(outcomes_router)  # opportunities and /v1/metrics/*
    install_console(app)  # the web console under /ui
    return app
