"""Outcomes' database adapter: the revenue ledger, alerts indexed for precision, opportunities and their stages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import (
    Account,
    AppliedAlertAction,
    Opportunity,
    OpportunityStageChange,
    OutcomeAlert,
    RevenueChange,
)
from services.scoring.adapters.transactions import locks_rows
from services.scoring.outcomes.domain.metrics import AlertFact
from services.scoring.outcomes.domain.revenue import ArrChange
from services.scoring.outcomes.domain.revenue import Opportunity as PipelineItem
from services.scoring.outcomes.domain.stages import OPEN_STAGES, Stage, automatic_close, outcome_of
from shared.db import affected_rows, insert_ignore
from shared.schemas import Alert, SubscriptionChangedEvent, utcnow

OPEN = [stage.value for stage in OPEN_STAGES]
SYSTEM_ACTOR = "radar"


class UnknownOpportunity(LookupError):
    pass


class OutcomesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._locking = locks_rows(session)

    # ------------------------------------------------------------------ writes (the event handlers)

    async def first_application(self, action_id: str, account_id: str) -> bool:
        """Records an alert action as applied; False when it was already (a redelivery)."""
        row = {"action_id": action_id, "account_id": account_id, "applied_at": utcnow()}
        return affected_rows(await self.session.execute(insert_ignore(self.session, AppliedAlertAction, [row], ["action_id"]))) == 1

    async def record_alert(self, alert: Alert) -> Opportunity | None:
        """Index the alert for precision; an expansion alert opens the account's opportunity, or joins the one
        already open (or the one a later upgrade already won, when a replay delivered the upgrade first)."""
        at = alert.signal.event_timestamp
        row = {
            "alert_id": alert.alert_id,
            "account_id": alert.account_id,
            "kind": alert.kind,
            "signal_type": alert.signal.type.value,
            "tier": alert.tier.value,
            "at": at,
        }
        inserted = affected_rows(await self.session.execute(insert_ignore(self.session, OutcomeAlert, [row], ["alert_id"])))
        if not inserted or alert.kind != "expansion":
            return None
        query = (
            select(Opportunity)
            .where(
                Opportunity.account_id == alert.account_id,
                or_(
                    Opportunity.stage.in_(OPEN),
                    and_(Opportunity.closed_by_event.is_not(None), Opportunity.identified_at <= at, Opportunity.closed_at > at),
                ),
            )
            .order_by(Opportunity.identified_at.desc())
            .limit(1)
        )
        current = await self.session.scalar(query.with_for_update() if self._locking else query)
        if current is not None:
            current.alert_count += 1
            current.updated_at = utcnow()
            return current
        opportunity = Opportunity(
            opportunity_id=f"opp:{alert.alert_id}",
            account_id=alert.account_id,
            alert_id=alert.alert_id,
            signal_type=alert.signal.type.value,
            tier=alert.tier.value,
            owner=alert.owner,
            stage=Stage.IDENTIFIED.value,
            expected_amount=alert.expansion_arr,
            identified_at=at,
            alert_count=1,
            updated_at=utcnow(),
        )
        self.session.add(opportunity)
        self._log(opportunity.opportunity_id, None, Stage.IDENTIFIED, None, f"alert {alert.alert_id}", SYSTEM_ACTOR, at)
        # the ledger may already hold what closes it: a replay's upgrade overtakes the signals pipeline
        await self._close_from_ledger(opportunity)
        return opportunity

    async def _close_from_ledger(self, opportunity: Opportunity) -> None:
        claimed = select(Opportunity.closed_by_event).where(Opportunity.closed_by_event.is_not(None))
        change = await self.session.scalar(
            select(RevenueChange)
            .where(
                RevenueChange.account_id == opportunity.account_id,
                RevenueChange.at >= opportunity.identified_at,
                or_(
                    and_(RevenueChange.arr_before > 0, RevenueChange.arr_after > RevenueChange.arr_before),
                    and_(RevenueChange.arr_after <= 0, RevenueChange.arr_before > 0),
                ),
                RevenueChange.event_id.not_in(claimed),
            )
            .order_by(RevenueChange.at)
            .limit(1)
        )
        if change is not None:
            await self._close_automatically(opportunity, change.event_id, change.at, change.arr_before, change.arr_after)

    async def record_subscription_change(self, event: SubscriptionChangedEvent) -> bool:
        """Book the change in the ledger (a replayed event id changes nothing) and let it win or lose the
        account's open opportunity identified before it. False for a replay."""
        row = {
            "event_id": event.id,
            "account_id": event.account_id,
            "at": event.timestamp,
            "arr_before": event.arr_before,
            "arr_after": event.arr_after,
            "plan": event.plan,
            "reason": event.reason,
        }
        inserted = affected_rows(await self.session.execute(insert_ignore(self.session, RevenueChange, [row], ["event_id"])))
        if not inserted or automatic_close(event.arr_before, event.arr_after) is None:
            return bool(inserted)
        query = (
            select(Opportunity)
            .where(Opportunity.account_id == event.account_id, Opportunity.stage.in_(OPEN), Opportunity.identified_at <= event.timestamp)
            .order_by(Opportunity.identified_at.desc())
            .limit(1)
        )
        opportunity = await self.session.scalar(query.with_for_update() if self._locking else query)
        if opportunity is not None:
            await self._close_automatically(opportunity, event.id, event.timestamp, event.arr_before, event.arr_after)
        elif 0 < event.arr_before < event.arr_after:
            # an owner marked it won before billing caught up: the upgrade fills in the real amount
            query = (
                select(Opportunity)
                .where(
                    Opportunity.account_id == event.account_id,
                    Opportunity.stage == Stage.WON.value,
                    Opportunity.closed_by_event.is_(None),
                    Opportunity.identified_at <= event.timestamp,
                )
                .order_by(Opportunity.identified_at.desc())
                .limit(1)
            )
            won = await self.session.scalar(query)
            if won is not None:
                won.amount, won.closed_by_event, won.updated_at = event.arr_after - event.arr_before, event.id, utcnow()
        return True

    async def _close_automatically(
        self, opportunity: Opportunity, event_id: str, at: datetime, arr_before: float, arr_after: float
    ) -> None:
        """Win or lose it in event time; alerts that joined it but happened after the close (a replay let
        them in before the change arrived) move to a successor opportunity, which the ledger may close too."""
        closing = automatic_close(arr_before, arr_after)
        if closing is None:
            return
        stage, amount, reason = closing
        previous = Stage(opportunity.stage)
        opportunity.stage, opportunity.amount, opportunity.reason = stage.value, amount, reason
        opportunity.closed_at, opportunity.closed_by_event, opportunity.updated_at = at, event_id, utcnow()
        self._log(opportunity.opportunity_id, previous, stage, amount, f"{reason} ({event_id})", "subscription_changed", at)
        await self.session.flush()
        later = (
            await self.session.scalars(
                select(OutcomeAlert)
                .where(OutcomeAlert.account_id == opportunity.account_id, OutcomeAlert.kind == "expansion", OutcomeAlert.at > at)
                .order_by(OutcomeAlert.at, OutcomeAlert.alert_id)
            )
        ).all()
        if not later:
            return
        successor_exists = await self.session.scalar(
            select(Opportunity.opportunity_id)
            .where(Opportunity.account_id == opportunity.account_id, Opportunity.identified_at > at)
            .limit(1)
        )
        if successor_exists is not None:
            return
        first = later[0]
        successor = Opportunity(
            opportunity_id=f"opp:{first.alert_id}",
            account_id=opportunity.account_id,
            alert_id=first.alert_id,
            signal_type=first.signal_type,
            tier=first.tier,
            owner=opportunity.owner,
            stage=Stage.IDENTIFIED.value,
            expected_amount=opportunity.expected_amount,
            identified_at=first.at,
            alert_count=len(later),
            updated_at=utcnow(),
        )
        opportunity.alert_count = max(1, opportunity.alert_count - len(later))
        self.session.add(successor)
        self._log(successor.opportunity_id, None, Stage.IDENTIFIED, None, f"alert {first.alert_id}", SYSTEM_ACTOR, first.at)
        await self._close_from_ledger(successor)

    def _log(
        self,
        opportunity_id: str,
        before: Stage | None,
        after: Stage,
        amount: float | None,
        reason: str | None,
        actor: str | None,
        at: datetime,
    ) -> None:
        self.session.add(
            OpportunityStageChange(
                opportunity_id=opportunity_id,
                from_stage=before.value if before else None,
                to_stage=after.value,
                amount=amount,
                reason=reason,
                actor=actor,
                at=at,
            )
        )

    async def opportunity(self, opportunity_id: str, lock: bool = False) -> Opportunity:
        query = select(Opportunity).where(Opportunity.opportunity_id == opportunity_id)
        found = await self.session.scalar(query.with_for_update() if lock and self._locking else query)
        if found is None:
            raise UnknownOpportunity(opportunity_id)
        return found

    async def set_stage(
        self, opportunity: Opportunity, stage: Stage, amount: float | None, reason: str | None, actor: str | None, at: datetime
    ) -> Opportunity:
        """The caller checked the move (`domain.stages.check_stage_change`)."""
        previous = Stage(opportunity.stage)
        opportunity.stage, opportunity.updated_at = stage.value, utcnow()
        if reason is not None:
            opportunity.reason = reason
        if stage == Stage.WON:
            opportunity.amount = amount if amount is not None else (opportunity.expected_amount or 0.0)
        elif stage == Stage.LOST:
            opportunity.amount = 0.0
        elif amount is not None:
            opportunity.expected_amount = amount
        if stage in (Stage.WON, Stage.LOST):
            opportunity.closed_at = at
        self._log(opportunity.opportunity_id, previous, stage, amount, reason, actor, at)
        return opportunity

    async def open_opportunity_of(self, account_id: str) -> Opportunity | None:
        query = (
            select(Opportunity)
            .where(Opportunity.account_id == account_id, Opportunity.stage.in_(OPEN))
            .order_by(Opportunity.identified_at.desc())
            .limit(1)
        )
        return await self.session.scalar(query.with_for_update() if self._locking else query)

    # ------------------------------------------------------------------ reads

    async def stage_changes(self, opportunity_id: str) -> Sequence[OpportunityStageChange]:
        return (
            await self.session.scalars(
                select(OpportunityStageChange)
                .where(OpportunityStageChange.opportunity_id == opportunity_id)
                .order_by(OpportunityStageChange.at, OpportunityStageChange.id)
            )
        ).all()

    async def list_opportunities(
        self, stage: str | None, owner: str | None, account_id: str | None, limit: int, offset: int
    ) -> tuple[Sequence[Opportunity], int]:
        filters: list[ColumnElement[bool]] = []
        if stage == "open":
            filters.append(Opportunity.stage.in_(OPEN))
        elif stage is not None:
            filters.append(Opportunity.stage == stage)
        if owner is not None:
            filters.append(Opportunity.owner == owner)
        if account_id is not None:
            filters.append(Opportunity.account_id == account_id)
        rows = (
            await self.session.scalars(
                select(Opportunity)
                .where(*filters)
                .order_by(Opportunity.identified_at.desc(), Opportunity.opportunity_id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        total = await self.session.scalar(select(func.count()).select_from(Opportunity).where(*filters)) or 0
        return rows, total

    async def ledger(self, before: datetime) -> list[ArrChange]:
        rows = (await self.session.execute(select(RevenueChange).where(RevenueChange.at < before).order_by(RevenueChange.at))).scalars()
        return [ArrChange(r.account_id, r.at, r.arr_before, r.arr_after) for r in rows]

    async def pipeline(self, start: datetime, end: datetime) -> list[PipelineItem]:
        rows = (
            await self.session.scalars(select(Opportunity).where(Opportunity.identified_at >= start, Opportunity.identified_at < end))
        ).all()
        return [PipelineItem(r.account_id, r.identified_at, outcome_of(r.stage), r.closed_at, r.amount or 0.0) for r in rows]

    async def expansion_alerts(self, start: datetime, end: datetime) -> list[AlertFact]:
        rows = (
            await self.session.scalars(
                select(OutcomeAlert).where(OutcomeAlert.kind == "expansion", OutcomeAlert.at >= start, OutcomeAlert.at < end)
            )
        ).all()
        return [AlertFact(r.account_id, r.signal_type, r.tier, r.at) for r in rows]

    async def declared_accounts(self) -> dict[str, tuple[float, str | None]]:
        """account -> (declared ARR, owner: the CSM, else the AE)."""
        rows = (await self.session.execute(select(Account.account_id, Account.arr, Account.owners))).all()
        return {account_id: (arr or 0.0, (owners or {}).get("csm") or (owners or {}).get("ae")) for account_id, arr, owners in rows}

    async def open_pipeline(self) -> list[Opportunity]:
        return list((await self.session.scalars(select(Opportunity).where(Opportunity.stage.in_(OPEN)))).all())

    async def closed_between(self, start: datetime, end: datetime) -> list[Opportunity]:
        return list(
            (
                await self.session.scalars(
                    select(Opportunity).where(
                        Opportunity.stage.in_([Stage.WON.value, Stage.LOST.value]),
                        Opportunity.updated_at >= start,
                        Opportunity.updated_at < end,
                    )
                )
            ).all()
        )
