"""Everything a scoring model scores, derived once from the account, its state and the plan catalog."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.scoring.domain.config import ScoringConfig
from services.scoring.domain.estimates import ExpansionEstimate, estimate_expansion
from services.scoring.domain.health import Health, health_of
from services.scoring.domain.state import AccountState, AccountView, Traits
from shared.schemas import PlanUpsert


@dataclass(frozen=True)
class Facts:
    """Everything a model scores, derived once; None means no data."""

    account: AccountView
    peak_metric: str | None
    peak_utilization: float | None
    team_growth: float | None  # the larger of seat growth and usage growth: the seeds' headcount growth, as we see it
    new_domain_users: int
    nps: float | None
    csat: float | None
    support_trend: str | None
    traits: Traits
    acv_vs_segment: float | None
    estimate: ExpansionEstimate
    health: Health
    seat_growth: float | None = None
    usage_growth: float | None = None


def facts_for(account: AccountView, state: AccountState, catalog: Mapping[str, PlanUpsert], config: ScoringConfig) -> Facts:
    account = account.current(state)
    peak_metric, peak = None, None
    if state.usage:
        peak_metric, snapshot = max(state.usage.items(), key=lambda item: item[1].utilization)
        peak = snapshot.utilization
    seats = account.limits.get("seats") or (state.usage["seats"].limit if "seats" in state.usage else None)
    seat_growth = len(state.domain_users) / seats if seats and state.domain_users else None
    growths = [g for g in (seat_growth, state.usage_growth) if g is not None]
    team_growth = max(growths) if growths else None
    health = health_of(state, config.health)
    return Facts(
        account=account,
        peak_metric=peak_metric,
        peak_utilization=peak,
        team_growth=team_growth,
        new_domain_users=len(state.domain_users),
        seat_growth=seat_growth,
        usage_growth=state.usage_growth,
        nps=state.nps,
        csat=sum(state.csat) / len(state.csat) if state.csat else None,
        support_trend=health.support_trend,
        traits=state.traits,
        acv_vs_segment=account.arr / config.segment_average_acv if account.arr > 0 else None,
        estimate=estimate_expansion(account, state.usage, catalog),
        health=health,
    )
