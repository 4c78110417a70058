"""`radar score --all`: every stored account rescored with the current config (after a model or band change).

Reads scores in primary-key order in batches (keyset pagination, no OFFSET scans), scores them with the
same pure functions the service uses, and writes each batch back with one executemany UPDATE plus one
INSERT of history rows for the accounts whose score or tier moved. No alerts: a config change is not a
customer signal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.adapters.tables import Account, Plan, Score, ScoreHistory
from services.scoring.domain import AccountState, AccountView, facts_for, model_for
from services.scoring.domain.config import ScoringConfig
from shared.schemas import PlanUpsert, utcnow

Progress = Callable[[int], None]


def _view(account_id: str, record: Account | None) -> AccountView:
    if record is None:
        return AccountView(account_id, account_id)
    owners = record.owners or {}
    return AccountView(
        account_id, record.name, record.plan, record.arr, dict(record.limits or {}), owners.get("csm"), owners.get("ae"),
        owners.get("slack_channel"), record.updated_at,
    )  # fmt: skip


async def count_scores(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Score)) or 0


async def rescore_all(
    sessions: async_sessionmaker[AsyncSession], config: ScoringConfig, progress: Progress = lambda _done: None, batch_size: int = 2_000
) -> tuple[int, int]:
    """Returns (accounts rescored, accounts whose score or tier changed)."""
    model = model_for(config)
    async with sessions() as session:
        plans = (await session.scalars(select(Plan))).all()
    catalog = {plan.plan_id: PlanUpsert(limits=plan.limits, price=plan.price, next_plan=plan.next_plan) for plan in plans}
    done = changed = 0
    after = ""
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
            now = utcnow()
            updates: list[dict[str, Any]] = []
            history: list[dict[str, Any]] = []
            for account_id, old_score, old_tier, inputs, account in rows:
                state = AccountState.model_validate(inputs or {})
                facts = facts_for(_view(account_id, account), state, catalog, config)
                card = model.score(facts)
                breakdown = card.breakdown()
                values = {"score": card.score, "tier": card.tier.value, "breakdown": breakdown}
                updates.append({"account_id": account_id, **values, "health": facts.health.score, "expansion_arr": facts.estimate.amount})
                if card.score != old_score or card.tier.value != old_tier:
                    history.append({"account_id": account_id, **values, "signal_id": None, "created_at": now, "health": facts.health.score})
            await session.execute(update(Score), updates)
            if history:
                await session.execute(insert(ScoreHistory), history)
        done += len(rows)
        changed += len(history)
        after = rows[-1][0]
        progress(done)
    return done, changed
