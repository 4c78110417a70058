"""The transactional outbox (adapter): alerts, their deliveries and the fatigue state, in one database.

An alert, its fatigue decision and its delivery rows are written in one transaction before the Kafka
offset commits. Senders claim due deliveries with FOR UPDATE SKIP LOCKED (PostgreSQL), so several
notifier processes share the work, and a delivery waits while an earlier one for the same account and
channel is still pending, which keeps each account's alerts in order through retries and outages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from services.notifier.adapters.tables import OpenTopic, Outreach
from services.notifier.domain.config import FatigueConfig
from services.notifier.domain.fatigue import AccountAttention as Attention
from services.notifier.domain.fatigue import Decision, Route, alert_level, decide, quarter_start, topic_key
from shared.db import AccountAttention, ClosedAlert, Delivery, OutboxAlert, affected_rows, insert_for, insert_ignore
from shared.schemas import Alert, utcnow


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: int
    channel: str
    attempts: int
    alert: Alert

    @property
    def key(self) -> str:
        """Stable across retries, restarts and processes: what receivers recognise a repeat by."""
        return f"{self.alert.alert_id}:{self.channel}"


@dataclass(frozen=True)
class StoreResult:
    stored: bool
    decision: Decision | None = None


class UnknownAlert(LookupError):
    pass


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], fatigue: FatigueConfig | None = None) -> None:
        self._sessions = sessions
        self._fatigue = fatigue or FatigueConfig()

    # ------------------------------------------------------------------ intake

    async def store(self, alert: Alert, channels: list[str], now: datetime | None = None) -> StoreResult:
        """One transaction for the alert, its fatigue decision and every delivery; a redelivered alert changes nothing."""
        now = now or utcnow()
        async with self._sessions.begin() as session:
            if await session.get(OutboxAlert, alert.alert_id) is not None:
                return StoreResult(False)
            decision = decide(alert, await self._attention(session, alert.account_id, now), self._fatigue, now)
            row = {
                "alert_id": alert.alert_id,
                "payload": alert.model_dump(mode="json"),
                "account_id": alert.account_id,
                "route": decision.route.value,
                "route_reason": decision.reason,
            }
            inserted = await session.execute(insert_ignore(session, OutboxAlert, [row], ["alert_id"]))
            if not affected_rows(inserted):
                return StoreResult(False)
            if decision.route != Route.DROP:
                await self._open_topic(session, alert)
            if decision.route == Route.PING and channels:
                rows = [{"alert_id": alert.alert_id, "channel": channel} for channel in channels]
                await session.execute(insert_ignore(session, Delivery, rows, ["alert_id", "channel"]))
        return StoreResult(True, decision)

    async def _attention(self, session: AsyncSession, account_id: str, now: datetime) -> Attention:
        state = await session.get(AccountAttention, account_id)
        topics = (await session.execute(select(OpenTopic.topic_key, OpenTopic.level).where(OpenTopic.account_id == account_id))).all()
        outreaches = await session.scalar(
            select(func.count()).select_from(Outreach).where(Outreach.account_id == account_id, Outreach.logged_at >= quarter_start(now))
        )
        return Attention(
            open_levels={key: level for key, level in topics},
            snoozed_until=state.snoozed_until if state else None,
            opted_out=bool(state and state.opted_out),
            outreaches_this_quarter=outreaches or 0,
        )

    async def _open_topic(self, session: AsyncSession, alert: Alert) -> None:
        level = alert_level(alert)
        statement = insert_for(session, OpenTopic).values(
            topic_key=topic_key(alert), account_id=alert.account_id, alert_id=alert.alert_id, level=level, opened_at=utcnow()
        )
        refresh = {"alert_id": alert.alert_id, "level": level}
        await session.execute(statement.on_conflict_do_update(index_elements=["topic_key"], set_=refresh))

    # ------------------------------------------------------------------ sending

    async def claim(self, limit: int = 20, claim_seconds: float = 60.0) -> list[DueDelivery]:
        """Take due deliveries for this process; another process may take them after `claim_seconds`."""
        earlier, earlier_alert = aliased(Delivery), aliased(OutboxAlert)
        blocked = exists().where(
            earlier.alert_id == earlier_alert.alert_id,
            earlier.channel == Delivery.channel,
            earlier.status == "pending",
            earlier_alert.account_id == OutboxAlert.account_id,
            earlier.id < Delivery.id,
        )
        now = utcnow()
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(Delivery, OutboxAlert)
                    .join(OutboxAlert, OutboxAlert.alert_id == Delivery.alert_id)
                    .where(Delivery.status == "pending", Delivery.next_attempt_at <= now, ~blocked)
                    .order_by(Delivery.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True, of=Delivery)
                )
            ).all()
            if rows:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_([d.id for d, _ in rows]))
                    .values(next_attempt_at=now + timedelta(seconds=claim_seconds))
                )
        return [DueDelivery(d.id, d.channel, d.attempts, Alert.model_validate(a.payload)) for d, a in rows]

    async def mark_sent(self, delivery_id: int) -> bool:
        """True when this is the alert's first delivery to any channel: the moment its end-to-end latency ends."""
        async with self._sessions.begin() as session:
            alert_id = await session.scalar(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == "pending")
                .values(status="sent", delivered_at=utcnow(), attempts=Delivery.attempts + 1, last_error=None)
                .returning(Delivery.alert_id)
            )
            if alert_id is None:
                return False
            sent = await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.alert_id == alert_id, Delivery.status == "sent")
            )
        return sent == 1

    async def mark_retry(self, delivery_id: int, delay_s: float, error: str) -> None:
        await self._update(
            delivery_id, attempts=Delivery.attempts + 1, next_attempt_at=utcnow() + timedelta(seconds=delay_s), last_error=error[:500]
        )

    async def defer(self, delivery_id: int, until: datetime) -> None:
        """Not an attempt (quiet hours): only the time it is due moves."""
        await self._update(delivery_id, next_attempt_at=until)

    async def release(self, delivery_ids: list[int]) -> None:
        """A stopping sender hands back what it claimed but did not send, so no one waits out the claim."""
        if delivery_ids:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(Delivery).where(Delivery.id.in_(delivery_ids), Delivery.status == "pending").values(next_attempt_at=utcnow())
                )

    async def mark_dead(self, delivery_id: int, error: str) -> None:
        """Given up on: the DLQ has it now, and later alerts for the account stop waiting for it."""
        await self._update(delivery_id, status="dead", attempts=Delivery.attempts + 1, last_error=error[:500])

    async def _update(self, delivery_id: int, **values: Any) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "pending").values(**values))

    async def revive(self, alert_payload: dict[str, Any], channel: str) -> bool:
        """`radar dlq replay`: the delivery becomes pending again with fresh attempts (re-created if missing)."""
        alert = Alert.model_validate(alert_payload)
        async with self._sessions.begin() as session:
            row = {"alert_id": alert.alert_id, "payload": alert.model_dump(mode="json"), "account_id": alert.account_id}
            await session.execute(insert_ignore(session, OutboxAlert, [row], ["alert_id"]))
            delivery = {"alert_id": alert.alert_id, "channel": channel}
            await session.execute(insert_ignore(session, Delivery, [delivery], ["alert_id", "channel"]))
            result = await session.execute(
                update(Delivery)
                .where(Delivery.alert_id == alert.alert_id, Delivery.channel == channel, Delivery.status != "sent")
                .values(status="pending", attempts=0, next_attempt_at=utcnow(), last_error=None)
            )
        return affected_rows(result) > 0

    async def deliveries(self, alert_id: str | None = None) -> list[Delivery]:
        async with self._sessions() as session:
            query = select(Delivery).order_by(Delivery.id)
            if alert_id is not None:
                query = query.where(Delivery.alert_id == alert_id)
            return list((await session.scalars(query)).all())

    # ------------------------------------------------------------------ actions

    async def close(self, alert_id: str, status: str, reason: str | None, actor: str | None) -> str:
        """Done or dismissed: the topic reopens for new alerts; done also logs an outreach. Returns the account id."""
        async with self._sessions.begin() as session:
            outbox = await session.get(OutboxAlert, alert_id)
            if outbox is None:
                raise UnknownAlert(alert_id)
            account_id = outbox.account_id or outbox.payload["account_id"]
            values = {"alert_id": alert_id, "account_id": account_id, "status": status, "reason": reason, "actor": actor}
            inserted = await session.execute(insert_ignore(session, ClosedAlert, [values], ["alert_id"]))
            await session.execute(delete(OpenTopic).where(OpenTopic.alert_id == alert_id))
            if status == "done" and affected_rows(inserted):
                session.add(Outreach(account_id=account_id, alert_id=alert_id, actor=actor))
        return account_id

    async def apply_action(
        self, alert_id: str, action: str, reason: str | None, actor: str | None, snoozed_until: datetime | None = None
    ) -> str:
        """An owner's action on an alert: done/dismissed close it, snoozed holds the account's alerts until
        `snoozed_until`. Applying it again changes nothing. Returns the account id; raises UnknownAlert."""
        if action != "snoozed":
            return await self.close(alert_id, action, reason, actor)
        account_id = await self.alert_account(alert_id)
        await self.set_attention(account_id, snoozed_until=snoozed_until, reason=reason)
        return account_id

    async def alert_account(self, alert_id: str) -> str:
        async with self._sessions() as session:
            outbox = await session.get(OutboxAlert, alert_id)
        if outbox is None:
            raise UnknownAlert(alert_id)
        return outbox.account_id or outbox.payload["account_id"]

    async def log_outreach(self, account_id: str, actor: str | None, alert_id: str | None = None) -> int:
        """Returns the outreaches logged for the account this quarter."""
        async with self._sessions.begin() as session:
            session.add(Outreach(account_id=account_id, alert_id=alert_id, actor=actor))
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Outreach)
                .where(Outreach.account_id == account_id, Outreach.logged_at >= quarter_start(utcnow()))
            )
        return count or 0

    async def set_attention(self, account_id: str, **values: Any) -> None:
        async with self._sessions.begin() as session:
            statement = insert_for(session, AccountAttention).values(account_id=account_id, updated_at=utcnow(), **values)
            await session.execute(statement.on_conflict_do_update(index_elements=["account_id"], set_={**values, "updated_at": utcnow()}))

    # ------------------------------------------------------------------ digest

    async def digest(self, send: Callable[[list[Alert]], Awaitable[None]]) -> int:
        """Send what waited as one digest and mark it, holding the rows locked meanwhile: another process skips
        them, and a failed send leaves them for the next digest. Returns how many alerts went out."""
        async with self._sessions.begin() as session:
            rows = (
                (
                    await session.execute(
                        select(OutboxAlert)
                        .outerjoin(ClosedAlert, ClosedAlert.alert_id == OutboxAlert.alert_id)
                        .where(and_(OutboxAlert.route == "digest", OutboxAlert.digested_at.is_(None), ClosedAlert.alert_id.is_(None)))
                        .order_by(OutboxAlert.created_at)
                        .with_for_update(skip_locked=True, of=OutboxAlert)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return 0
            await send([Alert.model_validate(row.payload) for row in rows])
            await session.execute(
                update(OutboxAlert).where(OutboxAlert.alert_id.in_([row.alert_id for row in rows])).values(digested_at=utcnow())
            )
        return len(rows)
