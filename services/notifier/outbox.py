"""The transactional outbox (adapter): alerts and their deliveries, written before the offset commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import Delivery, OutboxAlert, insert_ignore
from shared.schemas import Alert, utcnow


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: int
    channel: str
    attempts: int
    alert: Alert


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def store(self, alert: Alert, channels: list[str]) -> bool:
        """One transaction for the alert and every delivery; a redelivered alert changes nothing."""
        async with self._sessions.begin() as session:
            inserted = await session.execute(
                insert_ignore(session, OutboxAlert, [{"alert_id": alert.alert_id, "payload": alert.model_dump(mode="json")}], ["alert_id"])
            )
            if not inserted.rowcount:
                return False
            await session.execute(
                insert_ignore(session, Delivery, [{"alert_id": alert.alert_id, "channel": c} for c in channels], ["alert_id", "channel"])
            )
        return True

    async def due(self, limit: int = 50) -> list[DueDelivery]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Delivery, OutboxAlert)
                    .join(OutboxAlert, OutboxAlert.alert_id == Delivery.alert_id)
                    .where(Delivery.status == "pending", Delivery.next_attempt_at <= utcnow())
                    .order_by(Delivery.next_attempt_at, Delivery.id)
                    .limit(limit)
                )
            ).all()
        return [DueDelivery(d.id, d.channel, d.attempts, Alert.model_validate(a.payload)) for d, a in rows]

    async def mark_sent(self, delivery_id: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status="sent", delivered_at=utcnow(), attempts=Delivery.attempts + 1, last_error=None)
            )

    async def mark_retry(self, delivery_id: int, delay_s: float, error: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(attempts=Delivery.attempts + 1, next_attempt_at=utcnow() + timedelta(seconds=delay_s), last_error=error[:500])
            )

    async def mark_failed(self, delivery_id: int, error: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status="failed", attempts=Delivery.attempts + 1, last_error=error[:500])
            )
