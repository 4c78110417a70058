"""What scoring does with each record it consumes (HANDLERS, keyed by record type; entrypoints/kafka.py parses and
dispatches) and with `radar score --all`.

Every write is idempotent: a redelivered signal returns the alert stored the first time and changes nothing; a
replayed health event is recognised by its event id in the account's state; the ledger keys changes by event id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.scoring.adapters.metrics import ALERTS, RECORDS, SCORE_UPDATES
from services.scoring.adapters.repository import ScoringRepository, account_view
from services.scoring.adapters.transactions import UnitOfWork
from services.scoring.domain.alerts import build_alert
from services.scoring.domain.config import ScoringConfig
from services.scoring.domain.facts import facts_for
from services.scoring.domain.models import model_for
from services.scoring.domain.routing import actionable
from services.scoring.domain.state import AccountState, HealthEvent, record_event, record_signal
from services.scoring.outcomes import handlers as outcomes
from shared.schemas import (
    AccountUpdate,
    Alert,
    AlertAction,
    BillingIssueEvent,
    Contract,
    CsatEvent,
    NpsEvent,
    PlanUpdate,
    Signal,
    SubscriptionChangedEvent,
    SupportTicketEvent,
    utcnow,
)

Scores = UnitOfWork[ScoringRepository]


@dataclass(frozen=True)
class Context:
    """What the record handlers are given: the two repositories' units of work, the config, the alerts' way out."""

    scores: Scores
    outcomes: outcomes.Outcomes
    config: ScoringConfig
    publish_alert: Callable[[Alert], Awaitable[None]]


async def on_account_update(context: Context, update: AccountUpdate) -> None:
    async with context.scores() as repository:
        await repository.upsert_account(update)
    RECORDS.labels("account_update", "processed").inc()


async def on_plan_update(context: Context, update: PlanUpdate) -> None:
    async with context.scores() as repository:
        await repository.upsert_plan(update)
    RECORDS.labels("plan_update", "processed").inc()


async def on_signal(context: Context, signal: Signal) -> None:
    """Scored and stored; its alert is published when it is actionable (again on a redelivery: the same alert)."""
    alert = await score_signal(context.scores, signal, context.config)
    if alert is not None:
        await context.publish_alert(alert)
    RECORDS.labels("signal", "processed").inc()


async def on_health_event(context: Context, event: HealthEvent) -> None:
    """Rescores the account quietly (alerts follow signals); a subscription change also goes to the revenue ledger,
    where it may win or lose the account's opportunity."""
    applied = await rescore_on_health_event(context.scores, event, context.config)
    if isinstance(event, SubscriptionChangedEvent):
        await outcomes.on_subscription_changed(context.outcomes, event)
    RECORDS.labels("health_event", "processed" if applied else "duplicate").inc()


async def on_alert_action(context: Context, action: AlertAction) -> None:
    """An owner's done or dismissal, wherever it was clicked, moves the account's opportunity; a snooze leaves it."""
    await outcomes.apply_alert_action(
        context.outcomes, action.account_id, action.action, action.reason, action.actor, action_id=action.action_id
    )
    RECORDS.labels("alert_action", "processed").inc()


# each handler takes the record type it is keyed by
RecordHandler = Callable[[Context, Any], Awaitable[None]]
HANDLERS: dict[type[Contract], RecordHandler] = {
    AccountUpdate: on_account_update,
    PlanUpdate: on_plan_update,
    Signal: on_signal,
    AlertAction: on_alert_action,
    NpsEvent: on_health_event,
    CsatEvent: on_health_event,
    SupportTicketEvent: on_health_event,
    BillingIssueEvent: on_health_event,
    SubscriptionChangedEvent: on_health_event,
}


async def score_signal(scores: Scores, signal: Signal, config: ScoringConfig, now: datetime | None = None) -> Alert | None:
    """The alert to publish, or None when the score is below the actionable tier (the score is stored anyway)."""
    async with scores() as repository:
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
        await outcomes.on_alert(repository.outcomes, alert)  # opens or joins the account's opportunity
        ALERTS.labels(alert.kind).inc()
        return alert


async def rescore_on_health_event(scores: Scores, event: HealthEvent, config: ScoringConfig) -> bool:
    """False for a replayed event."""
    async with scores() as repository:
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


# ----------------------------------------------------------------------------- `radar score --all`

Progress = Callable[[int], None]


async def rescore_all(
    scores: Scores, config: ScoringConfig, progress: Progress = lambda _done: None, batch_size: int = 2_000
) -> tuple[int, int]:
    """Every stored account rescored with the current config (after a model or band change), a batch a transaction,
    with the same pure functions the records use; a history row only for the accounts whose score or tier moved. No
    alerts: a config change is not a customer signal. Returns (accounts rescored, accounts whose score or tier changed)."""
    model = model_for(config)
    async with scores() as repository:
        catalog = await repository.catalog()
    done = changed = 0
    after = ""
    while True:
        async with scores() as repository:
            rows = await repository.scores_after(after, batch_size)
            if not rows:
                break
            now = utcnow()
            updates: list[dict[str, Any]] = []
            history: list[dict[str, Any]] = []
            for account_id, old_score, old_tier, inputs, account in rows:
                state = AccountState.model_validate(inputs or {})
                facts = facts_for(account_view(account_id, account), state, catalog, config)
                card = model.score(facts)
                breakdown = card.breakdown()
                values = {"score": card.score, "tier": card.tier.value, "breakdown": breakdown}
                updates.append({"account_id": account_id, **values, "health": facts.health.score, "expansion_arr": facts.estimate.amount})
                if card.score != old_score or card.tier.value != old_tier:
                    history.append({"account_id": account_id, **values, "signal_id": None, "created_at": now, "health": facts.health.score})
            await repository.save_rescored(updates, history)
        done += len(rows)
        changed += len(history)
        after = rows[-1][0]
        progress(done)
    return done, changed
