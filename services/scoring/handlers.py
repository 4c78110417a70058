"""Scoring's service layer: signals become stored scores and alerts, health events refresh the score.

Every write is idempotent: a redelivered signal returns the alert stored the first time and changes
nothing; a replayed health event is recognised by its event id in the account's state.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from services.scoring import outcomes_service
from services.scoring.domain import HealthEvent, actionable, build_alert, facts_for, model_for, record_event, record_signal
from services.scoring.domain.config import ScoringConfig
from services.scoring.metrics import ALERTS, SCORE_UPDATES
from services.scoring.repository import ScoringRepository
from shared.schemas import AccountUpdate, Alert, PlanUpdate, Signal, utcnow

UnitOfWork = Callable[[], AbstractAsyncContextManager[ScoringRepository]]


async def handle_account_update(unit_of_work: UnitOfWork, update: AccountUpdate) -> None:
    async with unit_of_work() as repository:
        await repository.upsert_account(update)


async def handle_plan_update(unit_of_work: UnitOfWork, update: PlanUpdate) -> None:
    async with unit_of_work() as repository:
        await repository.upsert_plan(update)


async def handle_signal(unit_of_work: UnitOfWork, signal: Signal, config: ScoringConfig, now: datetime | None = None) -> Alert | None:
    """The alert to publish, or None when the score is below the actionable tier (the score is stored anyway)."""
    async with unit_of_work() as repository:
        if await repository.signal_seen(signal.signal_id):
            return await repository.alert_for_signal(signal.signal_id)
        account = await repository.account(signal.account_id)
        previous_state, previous_breakdown = await repository.state(signal.account_id)
        state = record_signal(previous_state, signal)
        facts = facts_for(account, state, await repository.catalog(), config)
        card = model_for(config).score(facts)
        SCORE_UPDATES.labels(card.tier.value).inc()
        alert = build_alert(signal, facts, card, state, previous_breakdown, config, now or utcnow())
        await repository.add_signal(signal)
        await repository.save_score(
            signal.account_id,
            card,
            state,
            owner=alert.owner,
            health=facts.health.score,
            expansion_arr=facts.estimate.amount,
            signal_id=signal.signal_id,
        )
        if not actionable(alert, config):
            ALERTS.labels("below_tier").inc()
            return None
        await repository.add_alert(alert)
        await outcomes_service.on_alert(repository.session, alert)  # opens or joins the account's opportunity
        ALERTS.labels(alert.kind).inc()
        return alert


async def handle_health_event(unit_of_work: UnitOfWork, event: HealthEvent, config: ScoringConfig) -> bool:
    """Rescores the account without an alert (alerts follow signals); False for a replayed event."""
    async with unit_of_work() as repository:
        previous_state, _ = await repository.state(event.account_id)
        state = record_event(previous_state, event, config.health)
        if state is None:
            return False
        account = await repository.account(event.account_id)
        facts = facts_for(account, state, await repository.catalog(), config)
        card = model_for(config).score(facts)
        SCORE_UPDATES.labels(card.tier.value).inc()
        owner = facts.account.csm or facts.account.ae or config.routing.default_owner
        await repository.save_score(
            event.account_id, card, state, owner=owner, health=facts.health.score, expansion_arr=facts.estimate.amount, signal_id=None
        )
        return True
