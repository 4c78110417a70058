"""The web console's reads: each page is a few indexed, paginated statements (filtering, ordering and paging
happen in SQL, so 10,000 accounts cost the same as 50), turned into view models by views.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import Account, AlertRecord, Opportunity, Score, ScoreHistory, SignalRecord
from services.scoring.entrypoints.console import views
from services.scoring.outcomes.adapters.repository import OPEN
from services.scoring.outcomes.domain.metrics import segment_for
from shared.db import AccountAttention, ClosedAlert, Delivery, OutboxAlert
from shared.schemas import AlertAction, utcnow

TREND_POINTS = 20
ALERTS_SHOWN = 20
TIMELINE = 50
OPPORTUNITIES_SHOWN = 50


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    name: str
    score: int | None  # None: declared, not scored yet
    tier: str | None
    owner: str | None
    arr: float | None
    expansion_arr: float | None
    segment: str
    trend: list[int]
    top_driver: views.Driver | None
    last_signal: str | None
    last_signal_at: datetime | None


async def accounts_page(
    session: AsyncSession, filters: views.AccountFilters, segments: Mapping[str, float]
) -> tuple[list[AccountRow], int]:
    """One page of every known account (declared, scored, or both: a full join) ranked by score, unscored last,
    then by id; with each row's trend and last signal. Three statements whatever the number of accounts (the page,
    its count, and the trend and signal of the page's ids)."""
    account_id = func.coalesce(Score.account_id, Account.account_id)
    conditions = []
    if filters.tier:
        conditions.append(Score.tier == filters.tier)
    if filters.owner:
        conditions.append(Score.owner == filters.owner)
    if filters.segment:
        low, high = views.segment_bounds(filters.segment, segments)
        arr = func.coalesce(Account.arr, 0)
        conditions.append(and_(arr >= low, arr < high) if high is not None else arr >= low)
    if filters.search:
        pattern = views.like_pattern(filters.search)
        conditions.append(or_(Account.name.ilike(pattern, escape="\\"), account_id.ilike(pattern, escape="\\")))
    joined = Score.__table__.join(Account.__table__, Account.account_id == Score.account_id, full=True)
    columns = (
        account_id.label("id"),
        Score.score,
        Score.tier,
        Score.owner,
        Score.expansion_arr,
        Score.breakdown,
        Account.name,
        Account.arr,
    )
    page = (
        await session.execute(
            select(*columns)
            .select_from(joined)
            .where(*conditions)
            .order_by(Score.score.desc().nulls_last(), account_id)
            .limit(views.PAGE_SIZE)
            .offset((filters.page - 1) * views.PAGE_SIZE)
        )
    ).all()
    total = await session.scalar(select(func.count()).select_from(joined).where(*conditions)) or 0
    ids = [row.id for row in page]
    trends, last_signals = await _trends(session, ids), await _last_signals(session, ids)
    rows = []
    for row in page:
        signal = last_signals.get(row.id)
        rows.append(
            AccountRow(
                account_id=row.id,
                name=row.name or row.id,
                score=row.score,
                tier=row.tier,
                owner=row.owner,
                arr=row.arr,
                expansion_arr=row.expansion_arr,
                segment=segment_for(row.arr or 0.0, segments),
                trend=trends.get(row.id, [row.score] if row.score is not None else []),
                top_driver=views.top_driver(row.breakdown),
                last_signal=views.humanize(signal[0]) if signal else None,
                last_signal_at=signal[1] if signal else None,
            )
        )
    return rows, total


async def _trends(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[int]]:
    """The last TREND_POINTS scores of each account, oldest first (ix_score_history_account_time)."""
    if not ids:
        return {}
    position = (
        func.row_number()
        .over(partition_by=ScoreHistory.account_id, order_by=(ScoreHistory.created_at.desc(), ScoreHistory.id.desc()))
        .label("position")
    )
    recent = (
        select(ScoreHistory.account_id, ScoreHistory.score, ScoreHistory.created_at, ScoreHistory.id, position)
        .where(ScoreHistory.account_id.in_(ids))
        .subquery()
    )
    rows = (
        await session.execute(
            select(recent.c.account_id, recent.c.score)
            .where(recent.c.position <= TREND_POINTS)
            .order_by(recent.c.account_id, recent.c.created_at, recent.c.id)
        )
    ).all()
    trends: dict[str, list[int]] = {}
    for account_id, score in rows:
        trends.setdefault(account_id, []).append(score)
    return trends


async def _last_signals(session: AsyncSession, ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
    if not ids:
        return {}
    position = func.row_number().over(partition_by=SignalRecord.account_id, order_by=SignalRecord.received_at.desc()).label("position")
    latest = (
        select(SignalRecord.account_id, SignalRecord.type, SignalRecord.received_at, position)
        .where(SignalRecord.account_id.in_(ids))
        .subquery()
    )
    rows = (await session.execute(select(latest.c.account_id, latest.c.type, latest.c.received_at).where(latest.c.position == 1))).all()
    return {account_id: (kind, at) for account_id, kind, at in rows}


async def owners(session: AsyncSession) -> list[str]:
    """The owners to filter by (ix_scores_owner)."""
    found = await session.scalars(select(Score.owner).where(Score.owner.is_not(None)).distinct().order_by(Score.owner))
    return [owner for owner in found if owner is not None]


@dataclass(frozen=True)
class AccountPageData:
    account: Account | None
    score: Score | None
    signals: list[dict[str, Any]]
    alerts: list[views.AlertRow]
    opportunity: Opportunity | None
    trend: list[int]


async def account_page(session: AsyncSession, account_id: str) -> AccountPageData | None:
    account = await session.get(Account, account_id)
    score = await session.get(Score, account_id)
    if account is None and score is None:
        return None
    signals = (
        await session.scalars(
            select(SignalRecord.payload)
            .where(SignalRecord.account_id == account_id)
            .order_by(SignalRecord.received_at.desc())
            .limit(TIMELINE)
        )
    ).all()
    alerts = (
        await session.scalars(
            select(AlertRecord.payload)
            .where(AlertRecord.account_id == account_id)
            .order_by(AlertRecord.created_at.desc())
            .limit(ALERTS_SHOWN)
        )
    ).all()
    alert_ids = [str(alert["alert_id"]) for alert in alerts]
    closed = {
        alert_id: (status, reason)
        for alert_id, status, reason in (
            await session.execute(
                select(ClosedAlert.alert_id, ClosedAlert.status, ClosedAlert.reason).where(ClosedAlert.alert_id.in_(alert_ids))
            )
        ).all()
    }
    routes = dict((await session.execute(select(OutboxAlert.alert_id, OutboxAlert.route).where(OutboxAlert.alert_id.in_(alert_ids)))).all())
    deliveries: dict[str, list[tuple[str, str, int]]] = {}
    for alert_id, channel, status, attempts in (
        await session.execute(
            select(Delivery.alert_id, Delivery.channel, Delivery.status, Delivery.attempts).where(Delivery.alert_id.in_(alert_ids))
        )
    ).all():
        deliveries.setdefault(alert_id, []).append((channel, status, attempts))
    attention = await session.get(AccountAttention, account_id)
    snoozed_until = attention.snoozed_until if attention else None
    if snoozed_until is not None and snoozed_until <= utcnow():
        snoozed_until = None  # a snooze that has ended holds nothing back: not shown
    opportunity = await session.scalar(
        select(Opportunity).where(Opportunity.account_id == account_id).order_by(Opportunity.identified_at.desc()).limit(1)
    )
    trend = (await _trends(session, [account_id])).get(account_id, [])
    return AccountPageData(
        account=account,
        score=score,
        signals=[dict(s) for s in signals],
        alerts=views.alert_rows(alerts, closed, routes, deliveries, snoozed_until),
        opportunity=opportunity,
        trend=trend,
    )


async def pipeline(session: AsyncSession) -> tuple[list[views.StageTotal], list[tuple[Opportunity, str]]]:
    """Totals per stage, and the largest open opportunities with their account's name."""
    totals = (
        await session.execute(
            select(Opportunity.stage, func.count(), func.sum(Opportunity.expected_amount), func.sum(Opportunity.amount)).group_by(
                Opportunity.stage
            )
        )
    ).all()
    largest = (
        await session.execute(
            select(Opportunity, Account.name)
            .outerjoin(Account, Account.account_id == Opportunity.account_id)
            .where(Opportunity.stage.in_(OPEN))
            .order_by(Opportunity.expected_amount.desc().nulls_last(), Opportunity.opportunity_id)
            .limit(OPPORTUNITIES_SHOWN)
        )
    ).all()
    return views.pipeline_totals(totals), [(o, name or o.account_id) for o, name in largest]


async def alerts_since(
    session: AsyncSession, after: datetime, limit: int = 20, catching_up: bool = False
) -> list[tuple[dict[str, Any], datetime]]:
    """Alerts created after `after`, newest first: what the live page polls for. Its first poll shows the newest
    `limit`; a later one (`catching_up`) takes the oldest `limit` since the last shown, so a burst of more than
    `limit` alerts between two polls comes over the next ones instead of being skipped."""
    created = AlertRecord.created_at
    statement = (
        select(AlertRecord.payload, created)
        .where(created > after)
        .order_by(*((created, AlertRecord.alert_id) if catching_up else (created.desc(), AlertRecord.alert_id)))
        .limit(limit)
    )
    found = [(dict(payload), at) for payload, at in (await session.execute(statement)).all()]
    return found[::-1] if catching_up else found


@dataclass(frozen=True)
class AlertState:
    """An alert as the notifier's tables show it (scoring may read them): its account, closed or not, the account's
    snooze."""

    account_id: str
    closed: str | None  # done | dismissed; None while open
    snoozed_until: datetime | None

    def shows(self, action: AlertAction) -> bool:
        """Whether the notifier has applied the action."""
        if action.action == "snoozed":
            return action.snoozed_until is not None and self.snoozed_until is not None and self.snoozed_until >= action.snoozed_until
        return self.closed is not None


async def alert_state(session: AsyncSession, alert_id: str) -> AlertState | None:
    """None for an alert that has not reached the notifier."""
    stored = await session.get(OutboxAlert, alert_id)
    if stored is None:
        return None
    account_id = stored.account_id or str(stored.payload["account_id"])
    closed = await session.get(ClosedAlert, alert_id)
    attention = await session.get(AccountAttention, account_id)
    return AlertState(account_id, closed.status if closed else None, attention.snoozed_until if attention else None)
