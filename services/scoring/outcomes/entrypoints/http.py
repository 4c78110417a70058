"""Outcomes routes on the scoring API: opportunities (list, get, change stage) and the metrics
(`/v1/metrics/revenue`, `/v1/metrics/signals`). Thin: the work is in `handlers.py` and `reports.py`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, model_validator

from services.scoring.adapters.tables import Opportunity, OpportunityStageChange
from services.scoring.entrypoints.deps import reader, runtime_of
from services.scoring.outcomes import handlers, reports
from services.scoring.outcomes.adapters.repository import UnknownOpportunity
from services.scoring.outcomes.domain.periods import PeriodError, ReportPeriod, custom_period, parse_period
from services.scoring.outcomes.domain.stages import Stage, StageError
from services.scoring.outcomes.reports import RevenueReport, Scope, SignalReport
from shared.auth import Principal

NO_NUL = r"^[^\x00]+$"
Text = Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)]
OpportunityId = Annotated[str, Path(min_length=1, max_length=250, pattern=NO_NUL)]


class GroupBy(StrEnum):
    segment = "segment"
    owner = "owner"


class StageFilter(StrEnum):
    open = "open"
    identified = "identified"
    qualified = "qualified"
    proposal = "proposal"
    won = "won"
    lost = "lost"


class StageChangeBody(BaseModel):
    stage: Stage
    amount: float | None = Field(
        default=None, ge=0, description="won: the ARR booked (default: the alert's estimate); open: a new estimate"
    )
    reason: str | None = Field(default=None, max_length=1000, description="why; required for lost")
    at: datetime | None = Field(default=None, description="when it happened (default now; timezone-aware)")

    @model_validator(mode="after")
    def _lost_needs_reason(self) -> StageChangeBody:
        if self.stage == Stage.LOST and not (self.reason and self.reason.strip()):
            raise ValueError("reason: say why the opportunity was lost")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("at: give a timezone, e.g. 2026-12-01T09:00:00Z")
        return self


class StageChangeView(BaseModel):
    from_stage: str | None
    to_stage: str
    amount: float | None
    reason: str | None
    actor: str | None
    at: datetime


class OpportunityView(BaseModel):
    opportunity_id: str
    account_id: str
    stage: str
    alert_id: str | None
    signal_type: str | None
    tier: str | None
    owner: str | None
    expected_amount: float | None
    amount: float | None
    reason: str | None
    identified_at: datetime
    closed_at: datetime | None
    closed_by_event: str | None
    alert_count: int
    history: list[StageChangeView] | None = None


class OpportunityPage(BaseModel):
    items: list[OpportunityView]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class PeriodView(BaseModel):
    label: str
    start: datetime
    end: datetime


def _view(row: Opportunity, history: list[OpportunityStageChange] | None = None) -> OpportunityView:
    return OpportunityView(
        opportunity_id=row.opportunity_id,
        account_id=row.account_id,
        stage=row.stage,
        alert_id=row.alert_id,
        signal_type=row.signal_type,
        tier=row.tier,
        owner=row.owner,
        expected_amount=row.expected_amount,
        amount=row.amount,
        reason=row.reason,
        identified_at=row.identified_at,
        closed_at=row.closed_at,
        closed_by_event=row.closed_by_event,
        alert_count=row.alert_count,
        history=None
        if history is None
        else [
            StageChangeView(from_stage=h.from_stage, to_stage=h.to_stage, amount=h.amount, reason=h.reason, actor=h.actor, at=h.at)
            for h in history
        ],
    )


def resolve_period(period: str | None, start: datetime | None, end: datetime | None) -> ReportPeriod:
    """`period` (2026, 2026-Q3, 2026-11) or `start` + `end`; a clear 400 otherwise."""
    try:
        if period is not None:
            if start is not None or end is not None:
                raise PeriodError("period: give either period or start and end, not both")
            return parse_period(period)
        if start is None or end is None:
            raise PeriodError("period: give period (e.g. 2026-Q3) or both start and end")
        if start.tzinfo is None or end.tzinfo is None:
            raise PeriodError("start/end: give a timezone, e.g. 2026-07-01T00:00:00Z")
        return custom_period(start, end)
    except PeriodError as exc:
        raise HTTPException(400, str(exc)) from None


class ErrorDetail(BaseModel):
    detail: str


BAD_PERIOD: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "the period is missing, ambiguous or not of the forms 2026, 2026-Q3, 2026-11"},
    401: {"description": "missing, unknown or revoked API key"},
    403: {"description": "the key lacks the 'read' scope"},
}


def _period(report_period: ReportPeriod) -> dict[str, Any]:
    return PeriodView(label=report_period.label, start=report_period.start, end=report_period.end).model_dump(mode="json")


def revenue_json(report: RevenueReport) -> dict[str, Any]:
    return {
        "period": _period(report.period),
        "segment": report.scope.segment,
        "owner": report.scope.owner,
        "metrics": report.metrics.as_dict(),
        "groups": {name: metrics.as_dict() for name, metrics in report.groups.items()} if report.scope.group_by else None,
        "group_by": report.scope.group_by,
    }


def signals_json(report: SignalReport) -> dict[str, Any]:
    return {
        "period": _period(report.period),
        "segment": report.scope.segment,
        "owner": report.scope.owner,
        "window_days": report.window_days,
        "population": report.population,
        "signals": [row.as_dict() for row in report.rows],
    }


router = APIRouter()


def period_query(
    period: Annotated[str | None, Query(max_length=20, description="2026, 2026-Q3 or 2026-11")] = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ReportPeriod:
    """The metrics routes' period parameters (a dependency: read after the key is checked)."""
    return resolve_period(period, start, end)


@router.get("/v1/metrics/revenue", responses=BAD_PERIOD)
async def revenue_metrics(
    request: Request,
    _principal: Principal = Depends(reader),
    report_period: ReportPeriod = Depends(period_query),
    segment: Text = None,
    owner: Text = None,
    group_by: GroupBy | None = None,
) -> dict[str, Any]:
    """NRR, GRR, expansion revenue and share, expansion rate, win rate, deal size, cycle, time to first
    expansion and expansion revenue per customer over the period, optionally per segment or owner."""
    scope = Scope(segment, owner, group_by.value if group_by else None)
    runtime = runtime_of(request)
    return revenue_json(await reports.revenue_report(runtime.outcomes, report_period, runtime.config.outcomes, scope))


@router.get("/v1/metrics/signals", responses=BAD_PERIOD)
async def signal_metrics(
    request: Request,
    _principal: Principal = Depends(reader),
    report_period: ReportPeriod = Depends(period_query),
    segment: Text = None,
    owner: Text = None,
) -> dict[str, Any]:
    """Per signal type and tier: accounts alerted, how many expanded within the precision window,
    precision, the never-alerted base rate and lift (`*` rows aggregate)."""
    runtime = runtime_of(request)
    return signals_json(await reports.signal_report(runtime.outcomes, report_period, runtime.config.outcomes, Scope(segment, owner)))


@router.get("/v1/opportunities", response_model=OpportunityPage)
async def list_opportunities(
    request: Request,
    stage: StageFilter | None = None,
    owner: Text = None,
    account_id: Text = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    _principal: Principal = Depends(reader),
) -> OpportunityPage:
    """Newest first; `stage=open` is every opportunity not yet won or lost."""
    async with runtime_of(request).outcomes() as repository:
        rows, total = await repository.list_opportunities(stage.value if stage else None, owner, account_id, limit, offset)
    following = offset + len(rows)
    return OpportunityPage(
        items=[_view(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=following if following < total else None,
    )


@router.get("/v1/opportunities/{opportunity_id}", response_model=OpportunityView, responses={404: {"description": "unknown opportunity"}})
async def get_opportunity(request: Request, opportunity_id: OpportunityId, _principal: Principal = Depends(reader)) -> OpportunityView:
    async with runtime_of(request).outcomes() as repository:
        try:
            row = await repository.opportunity(opportunity_id)
        except UnknownOpportunity:
            raise HTTPException(404, f"no opportunity {opportunity_id!r}") from None
        return _view(row, list(await repository.stage_changes(opportunity_id)))


@router.post(
    "/v1/opportunities/{opportunity_id}/stage",
    response_model=OpportunityView,
    responses={
        400: {"model": ErrorDetail, "description": "the body is not readable JSON"},
        404: {"description": "unknown opportunity"},
        409: {"description": "the move is not possible (e.g. already closed)"},
    },
)
async def change_stage(
    request: Request, opportunity_id: OpportunityId, body: StageChangeBody, principal: Principal = Depends(reader)
) -> OpportunityView:
    """identified → qualified → proposal (open stages move either way) → won (amount) / lost (reason)."""
    try:
        await handlers.change_stage(
            runtime_of(request).outcomes,
            opportunity_id,
            body.stage,
            amount=body.amount,
            reason=body.reason,
            actor=principal.name,
            at=body.at,
        )
    except UnknownOpportunity:
        raise HTTPException(404, f"no opportunity {opportunity_id!r}") from None
    except StageError as exc:
        raise HTTPException(409, str(exc)) from None
    return await get_opportunity(request, opportunity_id, principal)
