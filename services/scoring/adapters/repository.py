"""Scoring's database adapter: accounts, plans, current scores, score history, signals and alerts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import Account, AlertRecord, Plan, Score, ScoreHistory, SignalRecord
from services.scoring.adapters.transactions import locks_rows
from services.scoring.domain.scorecard import ScoreCard
from services.scoring.domain.state import AccountState, AccountView
from services.scoring.outcomes.adapters.repository import OutcomesRepository
from shared.db import insert_for
from shared.schemas import AccountUpdate, Alert, PlanUpdate, PlanUpsert, Signal, utcnow


def account_view(account_id: str, record: Account | None) -> AccountView:
    """An account no account-update has named yet is scored under its id, with no owners."""
    if record is None:
        return AccountView(account_id, account_id)
    owners = record.owners or {}
    return AccountView(
        account_id=record.account_id,
        name=record.name,
        plan=record.plan,
        arr=record.arr,
        limits=dict(record.limits or {}),
        csm=owners.get("csm"),
        ae=owners.get("ae"),
        slack_channel=owners.get("slack_channel"),
        updated_at=record.updated_at,
    )


class ScoringRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def outcomes(self) -> OutcomesRepository:
        """Outcomes' repository in the same transaction (an alert opens its opportunity with it)."""
        return OutcomesRepository(self.session)

    async def _upsert(self, model: type[Any], key: str, values: dict[str, Any]) -> None:
        statement = insert_for(self.session, model).values(values)
        statement = statement.on_conflict_do_update(index_elements=[key], set_={k: v for k, v in values.items() if k != key})
        await self.session.execute(statement)

    async def upsert_account(self, update: AccountUpdate) -> None:
        values = {
            "account_id": update.account_id,
            "name": update.name,
            "domains": list(update.domains),
            "plan": update.plan,
            "limits": dict(update.limits),
            "arr": update.arr,
            "owners": update.owners.model_dump(),
            "updated_at": update.updated_at,
        }
        await self._upsert(Account, "account_id", values)

    async def upsert_plan(self, update: PlanUpdate) -> None:
        values = {
            "plan_id": update.plan_id,
            "limits": dict(update.limits),
            "price": update.price,
            "next_plan": update.next_plan,
            "updated_at": update.updated_at,
        }
        await self._upsert(Plan, "plan_id", values)

    async def catalog(self) -> dict[str, PlanUpsert]:
        """The whole catalog: plans are few (tens), so one read per scored record is cheap."""
        plans = (await self.session.scalars(select(Plan))).all()
        return {plan.plan_id: PlanUpsert(limits=plan.limits, price=plan.price, next_plan=plan.next_plan) for plan in plans}

    async def account(self, account_id: str) -> AccountView:
        return account_view(account_id, await self.session.get(Account, account_id))

    async def state(self, account_id: str) -> tuple[AccountState, dict[str, Any] | None]:
        """The account's learnt state and the breakdown of its previous score (None before the first)."""
        score = await self.session.get(Score, account_id, with_for_update=locks_rows(self.session))
        if score is None:
            return AccountState(), None
        return AccountState.model_validate(score.inputs or {}), dict(score.breakdown or {})

    async def alert_for_signal(self, signal_id: str) -> Alert | None:
        record = await self.session.scalar(select(AlertRecord).where(AlertRecord.signal_id == signal_id))
        return Alert.model_validate(record.payload) if record else None

    async def signal_seen(self, signal_id: str) -> bool:
        return await self.session.get(SignalRecord, signal_id) is not None

    async def add_signal(self, signal: Signal) -> None:
        self.session.add(
            SignalRecord(
                signal_id=signal.signal_id, account_id=signal.account_id, type=signal.type.value, payload=signal.model_dump(mode="json")
            )
        )

    async def save_score(
        self,
        account_id: str,
        card: ScoreCard,
        state: AccountState,
        *,
        owner: str | None,
        health: float | None,
        expansion_arr: float | None,
        signal_id: str | None,
    ) -> None:
        now = utcnow()
        breakdown = card.breakdown()
        values = {
            "account_id": account_id,
            "score": card.score,
            "tier": card.tier.value,
            "breakdown": breakdown,
            "inputs": state.model_dump(mode="json"),
            "updated_at": now,
            "owner": owner,
            "health": health,
            "expansion_arr": expansion_arr,
        }
        await self._upsert(Score, "account_id", values)
        self.session.add(
            ScoreHistory(
                account_id=account_id,
                score=card.score,
                tier=card.tier.value,
                breakdown=breakdown,
                signal_id=signal_id,
                created_at=now,
                health=health,
            )
        )

    async def add_alert(self, alert: Alert) -> None:
        self.session.add(
            AlertRecord(
                alert_id=alert.alert_id,
                signal_id=alert.signal.signal_id,
                account_id=alert.account_id,
                payload=alert.model_dump(mode="json"),
                created_at=alert.created_at,
            )
        )

    # ------------------------------------------------------------------ rescoring (`radar score --all`)

    async def count_scores(self) -> int:
        return await self.session.scalar(select(func.count()).select_from(Score)) or 0

    async def scores_after(self, after: str, limit: int) -> Sequence[Row[str, int, str, dict[str, Any], Account | None]]:
        """The next batch of scores in primary-key order (keyset pagination: no OFFSET scans), with their accounts."""
        return (
            await self.session.execute(
                select(Score.account_id, Score.score, Score.tier, Score.inputs, Account)
                .outerjoin(Account, Account.account_id == Score.account_id)
                .where(Score.account_id > after)
                .order_by(Score.account_id)
                .limit(limit)
            )
        ).all()

    async def save_rescored(self, updates: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
        """One executemany UPDATE for the batch, one INSERT for the history rows of the scores that moved."""
        await self.session.execute(update(Score), updates)
        if history:
            await self.session.execute(insert(ScoreHistory), history)
