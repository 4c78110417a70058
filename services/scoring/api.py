"""Scoring's HTTP entrypoint: ops endpoints and the read API over scores and alerts."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from sqlalchemy import select

from services.scoring.bootstrap import ScoringRuntime
from shared.auth import Principal, require_scope
from shared.db import Account, AlertRecord, Score
from shared.observability import service_app
from shared.schemas import Tier


def create_app(runtime: ScoringRuntime) -> FastAPI:
    app = service_app("scoring", runtime)

    async def reader(request: Request) -> Principal:
        return await require_scope(request, runtime.keys, "read")

    @app.get("/v1/accounts")
    async def list_accounts(
        tier: Tier | None = None,
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0),
        _principal: Principal = Depends(reader),
    ) -> dict[str, Any]:
        """Accounts ranked by readiness score, highest first."""
        statement = select(Score, Account).outerjoin(Account, Account.account_id == Score.account_id)
        if tier is not None:
            statement = statement.where(Score.tier == tier.value)
        statement = statement.order_by(Score.score.desc(), Score.account_id).limit(limit).offset(offset)
        async with runtime.sessions() as session:
            rows = (await session.execute(statement)).all()
        return {
            "items": [
                {
                    "account_id": score.account_id,
                    "name": account.name if account else score.account_id,
                    "score": score.score,
                    "tier": score.tier,
                    "updated_at": score.updated_at,
                }
                for score, account in rows
            ],
            "limit": limit,
            "offset": offset,
        }

    @app.get("/v1/accounts/{account_id}")
    async def get_account(account_id: str, _principal: Principal = Depends(reader)) -> dict[str, Any]:
        async with runtime.sessions() as session:
            score = await session.get(Score, account_id)
            account = await session.get(Account, account_id)
            alerts = (
                await session.scalars(
                    select(AlertRecord).where(AlertRecord.account_id == account_id).order_by(AlertRecord.created_at.desc()).limit(50)
                )
            ).all()
        if score is None and account is None:
            raise HTTPException(status_code=404, detail=f"no account {account_id!r} is known")
        return {
            "account_id": account_id,
            "name": account.name if account else account_id,
            "limits": account.limits if account else {},
            "owners": account.owners if account else {},
            "score": score.score if score else None,
            "tier": score.tier if score else None,
            "breakdown": score.breakdown if score else None,
            "alerts": [alert.payload for alert in alerts],
        }

    return app
