"""Outcomes' handlers: what scoring's records do to the ledger and the opportunities (an alert, a subscription change,
an owner's action on an alert) and an owner's stage change from the API. Each is one transaction; a repeat changes
nothing (the ledger and the alert index are keyed by event and alert id; an action finds its opportunity moved)."""

from __future__ import annotations

from datetime import datetime

from services.scoring.adapters.tables import Opportunity
from services.scoring.adapters.transactions import UnitOfWork
from services.scoring.outcomes.adapters.repository import OutcomesRepository
from services.scoring.outcomes.domain.stages import Stage, StageError, alert_action_move, check_stage_change
from shared.schemas import Alert, SubscriptionChangedEvent, utcnow

Outcomes = UnitOfWork[OutcomesRepository]


async def on_alert(repository: OutcomesRepository, alert: Alert) -> None:
    """Called in the transaction that stores the alert: indexes it, and an expansion alert opens or joins the
    account's opportunity."""
    await repository.record_alert(alert)


async def on_subscription_changed(outcomes: Outcomes, event: SubscriptionChangedEvent) -> bool:
    """Books the change in the revenue ledger (False for a replay); an upgrade or a churn closes the open opportunity."""
    async with outcomes() as repository:
        return await repository.record_subscription_change(event)


async def change_stage(
    outcomes: Outcomes,
    opportunity_id: str,
    stage: Stage,
    *,
    amount: float | None = None,
    reason: str | None = None,
    actor: str | None = None,
    at: datetime | None = None,
) -> Opportunity:
    """Raises UnknownOpportunity or StageError (saying why)."""
    async with outcomes() as repository:
        opportunity = await repository.opportunity(opportunity_id, lock=True)
        check_stage_change(Stage(opportunity.stage), stage, reason)
        if at is not None and at < opportunity.identified_at and stage in (Stage.WON, Stage.LOST):
            raise StageError(f"at: {at.isoformat()} is before the opportunity was identified ({opportunity.identified_at.isoformat()})")
        return await repository.set_stage(opportunity, stage, amount, reason, actor, at or utcnow())


async def apply_alert_action(
    outcomes: Outcomes, account_id: str, action: str, reason: str | None, actor: str | None, action_id: str | None = None
) -> str | None:
    """An owner's action on one of the account's alerts (alert-actions) moves its open opportunity
    (`domain.stages.alert_action_move`). Returns the new stage, None when nothing moved. An `action_id` already
    applied moves nothing: by its redelivery the account may have a newer opportunity."""
    async with outcomes() as repository:
        if action_id is not None and not await repository.first_application(action_id, account_id):
            return None
        opportunity = await repository.open_opportunity_of(account_id)
        if opportunity is None:
            return None
        move = alert_action_move(Stage(opportunity.stage), action, reason)
        if move is None:
            return None
        target, why = move
        await repository.set_stage(opportunity, target, None, why, actor, utcnow())
        return target.value
