"""Scoring's database adapter: accounts, scores, history, signals and alerts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Account, AlertRecord, Score, ScoreHistory, SignalRecord, insert_for
from shared.schemas import AccountUpdate, Alert, Signal, utcnow


class ScoringRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
        statement = insert_for(self.session, Account).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["account_id"], set_={k: v for k, v in values.items() if k != "account_id"}
        )
        await self.session.execute(statement)

    async def account(self, account_id: str) -> Account | None:
        return await self.session.get(Account, account_id)

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

    async def score_inputs(self, account_id: str) -> dict[str, Any]:
        score = await self.session.get(Score, account_id)
        return dict(score.inputs) if score else {}

    async def save_score(
        self, account_id: str, score: int, tier: str, breakdown: dict[str, Any], inputs: dict[str, Any], signal_id: str
    ) -> None:
        now = utcnow()
        values = {"account_id": account_id, "score": score, "tier": tier, "breakdown": breakdown, "inputs": inputs, "updated_at": now}
        statement = insert_for(self.session, Score).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["account_id"], set_={k: v for k, v in values.items() if k != "account_id"}
        )
        await self.session.execute(statement)
        self.session.add(
            ScoreHistory(account_id=account_id, score=score, tier=tier, breakdown=breakdown, signal_id=signal_id, created_at=now)
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
