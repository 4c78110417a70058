"""Outcomes' reports: the revenue and signal metrics of a period for a scope of accounts, and the weekly summary's
text. Read-only; the API, `radar report`, the console and the summary loop all ask here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scoring.outcomes.adapters.repository import OutcomesRepository
from services.scoring.outcomes.domain.config import OutcomesConfig
from services.scoring.outcomes.domain.metrics import (
    ALL,
    RevenueMetrics,
    SignalMetrics,
    active_accounts,
    grouped_revenue_metrics,
    period_arr,
    revenue_metrics,
    segment_for,
    signal_metrics,
)
from services.scoring.outcomes.domain.periods import ReportPeriod, custom_period, quarters_up_to
from services.scoring.outcomes.domain.revenue import ArrChange
from services.scoring.outcomes.domain.stages import OPEN_STAGES, Stage
from services.scoring.outcomes.domain.summary import PipelineSnapshot, summary_text
from services.scoring.outcomes.handlers import Outcomes
from shared.schemas import utcnow


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
) -> tuple[list[ArrChange], dict[str, str], dict[str, str]]:
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


async def revenue_report(outcomes: Outcomes, period: ReportPeriod, config: OutcomesConfig, scope: Scope = Scope()) -> RevenueReport:
    async with outcomes() as repository:
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


async def signal_report(outcomes: Outcomes, period: ReportPeriod, config: OutcomesConfig, scope: Scope = Scope()) -> SignalReport:
    window = config.precision_window_days
    async with outcomes() as repository:
        changes, segments, _ = await _accounts_in_scope(repository, period, config, scope, period.end + timedelta(days=window))
        alerts = await repository.expansion_alerts(period.start, period.end)
    if not _unscoped(scope):
        alerts = [a for a in alerts if a.account_id in segments]
    population = active_accounts(changes, period.start, period.end) | {a.account_id for a in alerts}
    rows = signal_metrics(alerts, changes, population, period.start, period.end, window)
    return SignalReport(period, scope, window, len(population), rows)


async def weekly_summary(outcomes: Outcomes, config: OutcomesConfig, now: datetime | None = None) -> str:
    now = now or utcnow()
    quarters = quarters_up_to(now, 4)
    trend = [(q.label, (await revenue_report(outcomes, q, config)).metrics.nrr) for q in quarters]
    current = await revenue_report(outcomes, quarters[-1], config)
    # precision needs time to show: judged over the whole trend (the last four quarters), not this one alone
    signals = await signal_report(outcomes, custom_period(quarters[0].start, quarters[-1].end), config)
    async with outcomes() as repository:
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
