"""Outcomes' service layer: the event hooks scoring calls, stage changes (API and notifier actions),
the revenue and signal reports, and the weekly summary to Slack.

Stage changes live here and act on the shared database: the scoring API is their home, and the notifier's
done/dismiss actions (API and Slack buttons) call `apply_alert_action` in the same database rather than
sending a Kafka message back to scoring, so a click is reflected at once and cannot be reordered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.adapters.tables import Opportunity
from services.scoring.domain.config import OutcomesConfig
from services.scoring.outcomes import (
    ALL,
    OPEN_STAGES,
    PipelineSnapshot,
    ReportPeriod,
    RevenueMetrics,
    SignalMetrics,
    Stage,
    StageError,
    active_accounts,
    check_stage_change,
    custom_period,
    grouped_revenue_metrics,
    period_arr,
    quarters_up_to,
    revenue_metrics,
    segment_for,
    signal_metrics,
    summary_text,
)
from services.scoring.outcomes_repository import OutcomesRepository, UnknownOpportunity
from shared.schemas import Alert, SubscriptionChangedEvent, utcnow

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]

# ----------------------------------------------------------------------------- event hooks


async def on_alert(session: AsyncSession, alert: Alert) -> None:
    """Called in the transaction that stores the alert."""
    await OutcomesRepository(session).record_alert(alert)


async def on_subscription_changed(sessions: Sessions, event: SubscriptionChangedEvent) -> bool:
    async with sessions.begin() as session:
        return await OutcomesRepository(session).record_subscription_change(event)


# ----------------------------------------------------------------------------- stage changes


async def change_stage(
    sessions: Sessions,
    opportunity_id: str,
    stage: Stage,
    *,
    amount: float | None = None,
    reason: str | None = None,
    actor: str | None = None,
    at: datetime | None = None,
) -> Opportunity:
    """Raises UnknownOpportunity or StageError (saying why)."""
    async with sessions.begin() as session:
        repository = OutcomesRepository(session)
        opportunity = await repository.opportunity(opportunity_id, lock=True)
        check_stage_change(Stage(opportunity.stage), stage, reason)
        if at is not None and at < opportunity.identified_at and stage in (Stage.WON, Stage.LOST):
            raise StageError(f"at: {at.isoformat()} is before the opportunity was identified ({opportunity.identified_at.isoformat()})")
        return await repository.set_stage(opportunity, stage, amount, reason, actor, at or utcnow())


async def apply_alert_action(sessions: Sessions, account_id: str, action: str, reason: str | None, actor: str | None) -> str | None:
    """The notifier's actions on an alert move the account's open opportunity: `done` (the owner reached
    out) qualifies an identified one; `dismissed` loses it with the dismissal's reason. Returns the new stage."""
    async with sessions.begin() as session:
        repository = OutcomesRepository(session)
        opportunity = await repository.open_opportunity_of(account_id)
        if opportunity is None:
            return None
        if action == "done" and opportunity.stage == Stage.IDENTIFIED.value:
            target, why = Stage.QUALIFIED, "owner reached out"
        elif action == "dismissed":
            target, why = Stage.LOST, f"alert dismissed: {reason or 'no reason given'}"
        else:
            return None
        await repository.set_stage(opportunity, target, None, why, actor, utcnow())
        return target.value


# ----------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class Scope:
    """Which accounts a report covers and how it groups them."""

    segment: str | None = None
    owner: str | None = None
    group_by: str | None = None  # "segment" | "owner"


@dataclass(frozen=True)
class RevenueReport:
    period: ReportPeriod
    scope: Scope
    metrics: RevenueMetrics
    groups: dict[str, RevenueMetrics]


@dataclass(frozen=True)
class SignalReport:
    period: ReportPeriod
    scope: Scope
    window_days: float
    population: int
    rows: list[SignalMetrics]


async def _accounts_in_scope(
    repository: OutcomesRepository, period: ReportPeriod, config: OutcomesConfig, scope: Scope, before: datetime
) -> tuple[list, dict[str, str], dict[str, str]]:
    """(ledger up to `before`, account -> segment, account -> owner) for the accounts the scope keeps."""
    changes = await repository.ledger(before)
    declared = await repository.declared_accounts()
    arr = period_arr(changes, period.start, period.end, {a: v for a, (v, _) in declared.items() if v > 0})
    accounts = set(arr) | {c.account_id for c in changes}
    segments = {a: segment_for(arr.get(a, 0.0), config.segments) for a in accounts}
    owners = {a: (declared.get(a, (0.0, None))[1] or "unassigned") for a in accounts}
    keep = {
        a for a in accounts if (scope.segment is None or segments[a] == scope.segment) and (scope.owner is None or owners[a] == scope.owner)
    }
    return [c for c in changes if c.account_id in keep], {a: segments[a] for a in keep}, {a: owners[a] for a in keep}


async def revenue_report(sessions: Sessions, period: ReportPeriod, config: OutcomesConfig, scope: Scope = Scope()) -> RevenueReport:
    async with sessions() as session:
        repository = OutcomesRepository(session)
        changes, segments, owners = await _accounts_in_scope(repository, period, config, scope, period.end)
        opportunities = [o for o in await repository.pipeline(period.start, period.end) if o.account_id in segments or _unscoped(scope)]
    metrics = revenue_metrics(changes, opportunities, period.start, period.end)
    groups: dict[str, RevenueMetrics] = {}
    if scope.group_by in ("segment", "owner"):
        mapping = segments if scope.group_by == "segment" else owners
        if _unscoped(scope):
            mapping = {**{o.account_id: "unassigned" for o in opportunities}, **mapping}
        groups = grouped_revenue_metrics(changes, opportunities, mapping, period.start, period.end)
    return RevenueReport(period, scope, metrics, groups)


def _unscoped(scope: Scope) -> bool:
    return scope.segment is None and scope.owner is None


async def signal_report(sessions: Sessions, period: ReportPeriod, config: OutcomesConfig, scope: Scope = Scope()) -> SignalReport:
    window = config.precision_window_days
    async with sessions() as session:
        repository = OutcomesRepository(session)
        changes, segments, _ = await _accounts_in_scope(repository, period, config, scope, period.end + timedelta(days=window))
        alerts = await repository.expansion_alerts(period.start, period.end)
    if not _unscoped(scope):
        alerts = [a for a in alerts if a.account_id in segments]
    population = active_accounts(changes, period.start, period.end) | {a.account_id for a in alerts}
    rows = signal_metrics(alerts, changes, population, period.start, period.end, window)
    return SignalReport(period, scope, window, len(population), rows)


# ----------------------------------------------------------------------------- the weekly summary


async def weekly_summary(sessions: Sessions, config: OutcomesConfig, now: datetime | None = None) -> str:
    now = now or utcnow()
    quarters = quarters_up_to(now, 4)
    trend = [(q.label, (await revenue_report(sessions, q, config)).metrics.nrr) for q in quarters]
    current = await revenue_report(sessions, quarters[-1], config)
    # precision needs time to show: judged over the whole trend (the last four quarters), not this one alone
    signals = await signal_report(sessions, custom_period(quarters[0].start, quarters[-1].end), config)
    async with sessions() as session:
        repository = OutcomesRepository(session)
        open_rows = await repository.open_pipeline()
        closed = await repository.closed_between(now - timedelta(days=7), now)
    by_stage = {stage.value: sum(1 for o in open_rows if o.stage == stage.value) for stage in OPEN_STAGES}
    won = [o for o in closed if o.stage == Stage.WON.value]
    snapshot = PipelineSnapshot(
        open_by_stage=by_stage,
        open_expected_amount=sum(o.expected_amount or 0.0 for o in open_rows),
        won_count=len(won),
        won_amount=sum(o.amount or 0.0 for o in won),
        lost_count=len(closed) - len(won),
    )
    return summary_text(now, snapshot, current.metrics, quarters[-1].label, trend, [r for r in signals.rows if r.signal_type != ALL])


async def post_summary(text: str, webhook_url: str | None, http: httpx.AsyncClient | None = None) -> bool:
    """To a Slack incoming webhook; without one it is printed (as the notifier's console channel does)."""
    if not webhook_url:
        print(text, flush=True)
        return False
    client = http or httpx.AsyncClient(timeout=10)
    try:
        for attempt in range(3):
            response = await client.post(webhook_url, json={"text": text})
            if response.status_code == 429 or response.status_code >= 500:
                await asyncio.sleep(min(float(response.headers.get("retry-after", 1 + attempt)), 30))
                continue
            response.raise_for_status()
            return True
        response.raise_for_status()
        return False
    finally:
        if http is None:
            await client.aclose()


async def summary_every(sessions: Sessions, config: OutcomesConfig, webhook: Callable[[], str | None], stopping: asyncio.Event) -> None:
    """The weekly (configurable) summary loop scoring runs; a failure waits for the next round."""
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), timeout=config.summary_every_hours * 3600)
            return
        except TimeoutError:
            pass
        try:
            await post_summary(await weekly_summary(sessions, config), webhook())
        except Exception:
            log.exception("expansion summary failed; the next one follows on schedule")


__all__ = ["StageError", "UnknownOpportunity"]
