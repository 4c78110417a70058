"""Scoring's service layer: a signal becomes a stored score and an alert, once per signal id."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from services.scoring.domain import AccountView, ScoreInputs, build_alert, compute_score, record_signal
from services.scoring.repository import ScoringRepository
from shared.config import ScoringConfig
from shared.schemas import AccountUpdate, Alert, Signal, utcnow

UnitOfWork = Callable[[], AbstractAsyncContextManager[ScoringRepository]]


async def handle_account_update(unit_of_work: UnitOfWork, update: AccountUpdate) -> None:
    async with unit_of_work() as repository:
        await repository.upsert_account(update)


async def handle_signal(unit_of_work: UnitOfWork, signal: Signal, config: ScoringConfig) -> Alert:
    """Idempotent: a redelivered signal returns the alert stored the first time and changes nothing."""
    async with unit_of_work() as repository:
        if await repository.signal_seen(signal.signal_id):
            existing = await repository.alert_for_signal(signal.signal_id)
            if existing is not None:
                return existing
        account = await repository.account(signal.account_id)
        view = (
            AccountView(account.account_id, account.name, (account.owners or {}).get("csm"), (account.owners or {}).get("slack_channel"))
            if account
            else AccountView(signal.account_id, signal.account_id)
        )
        inputs = record_signal(ScoreInputs.model_validate(await repository.score_inputs(signal.account_id)), signal)
        card = compute_score(inputs, config)
        alert = build_alert(signal, view, card, inputs, utcnow())
        await repository.add_signal(signal)
        await repository.save_score(
            signal.account_id, card.score, card.tier.value, card.breakdown(), inputs.model_dump(mode="json"), signal.signal_id
        )
        await repository.add_alert(alert)
        return alert
