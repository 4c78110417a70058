"""What scoring learns of an account: its state from signals and health events (stored as JSON with its score),
and the account as the last account-update declared it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from services.scoring.domain.config import HealthConfig
from shared.schemas import BillingIssueEvent, CsatEvent, NpsEvent, Signal, SignalType, SubscriptionChangedEvent, SupportTicketEvent
from shared.signal_types import kinds_where

HealthEvent = NpsEvent | CsatEvent | SupportTicketEvent | BillingIssueEvent | SubscriptionChangedEvent
HEALTH_EVENT_TYPES = ("nps", "csat", "support_ticket", "billing_issue", "subscription_changed")
RECENT_EVENT_IDS = 500
RECENT_CSAT = 10
RECENT_TIMES = 200
USAGE_READINGS = kinds_where(lambda kind: kind.usage_reading)  # kept as the metric's current usage
USAGE_ACTIVITY = kinds_where(lambda kind: kind.usage_activity)  # recent activity, for the health's usage trend


class UsageSnapshot(BaseModel):
    value: float
    limit: float
    utilization: float
    at: datetime | None = None


class Traits(BaseModel):
    """Facts that only a CRM knows; scored when present, reported missing otherwise."""

    weekly_active_share: float | None = None
    feature_breadth: float | None = None
    funding: str | None = None
    open_roles: int | None = None
    engaged_stakeholders: int | None = None
    executive_sponsor: str | None = None


class AccountState(BaseModel):
    """What scoring has learnt about an account from its signals and health events (stored as JSON)."""

    usage: dict[str, UsageSnapshot] = Field(default_factory=dict)
    domain_users: list[str] = Field(default_factory=list)
    usage_signal_times: list[datetime] = Field(default_factory=list)
    usage_growth: float | None = None  # the latest usage_growth signal: this week over last, minus 1
    nps: float | None = None
    csat: list[float] = Field(default_factory=list)
    ticket_times: list[datetime] = Field(default_factory=list)
    billing_seen: bool = False
    billing_issue_open_since: datetime | None = None
    billing_issue_kind: str | None = None
    subscription_arr: float | None = None
    subscription_plan: str | None = None
    subscription_at: datetime | None = None
    downgrade_times: list[datetime] = Field(default_factory=list)
    traits: Traits = Field(default_factory=Traits)
    event_ids: list[str] = Field(default_factory=list)
    as_of: datetime | None = None


def _later(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None or moment > current else current


def record_signal(state: AccountState, signal: Signal) -> AccountState:
    updated = state.model_copy(deep=True)
    updated.as_of = _later(state.as_of, signal.event_timestamp)
    if signal.metric and signal.limit and signal.type in USAGE_READINGS:
        utilization = signal.utilization if signal.utilization is not None else (signal.value or 0.0) / signal.limit
        updated.usage[signal.metric] = UsageSnapshot(
            value=signal.value or 0.0, limit=signal.limit, utilization=utilization, at=signal.event_timestamp
        )
    if signal.type == SignalType.NEW_DOMAIN_USER and signal.user and signal.user.email not in updated.domain_users:
        updated.domain_users.append(signal.user.email)
    if signal.type == SignalType.USAGE_GROWTH and signal.growth is not None:
        updated.usage_growth = signal.growth
    if signal.type in USAGE_ACTIVITY:
        updated.usage_signal_times = [*updated.usage_signal_times, signal.event_timestamp][-RECENT_TIMES:]
    return updated


def record_event(state: AccountState, event: HealthEvent, health: HealthConfig) -> AccountState | None:
    """None when the event was seen before: a replayed health event changes nothing."""
    if event.id in state.event_ids:
        return None
    updated = state.model_copy(deep=True)
    updated.event_ids = [*updated.event_ids, event.id][-RECENT_EVENT_IDS:]
    updated.as_of = _later(state.as_of, event.timestamp)
    if isinstance(event, NpsEvent):
        updated.nps = float(event.score)
    elif isinstance(event, CsatEvent):
        updated.csat = [*updated.csat, event.score][-RECENT_CSAT:]
    elif isinstance(event, SupportTicketEvent):
        if event.status in ("open", "pending"):
            updated.ticket_times = [*updated.ticket_times, event.timestamp][-RECENT_TIMES:]
    elif isinstance(event, BillingIssueEvent):
        updated.billing_seen = True
        if event.kind.lower() in {kind.lower() for kind in health.billing_resolved_kinds}:
            updated.billing_issue_open_since = None
            updated.billing_issue_kind = None
        else:
            updated.billing_issue_open_since = event.timestamp
            updated.billing_issue_kind = event.kind
    else:
        if updated.subscription_at is None or event.timestamp >= updated.subscription_at:
            updated.subscription_arr = event.arr_after
            updated.subscription_plan = event.plan or updated.subscription_plan
            updated.subscription_at = event.timestamp
        if event.arr_after < event.arr_before:
            updated.downgrade_times = [*updated.downgrade_times, event.timestamp][-RECENT_TIMES:]
    return updated


@dataclass(frozen=True)
class AccountView:
    account_id: str
    name: str
    plan: str | None = None
    arr: float = 0.0
    limits: Mapping[str, float] = field(default_factory=dict)
    csm: str | None = None
    ae: str | None = None
    slack_channel: str | None = None
    updated_at: datetime | None = None

    def current(self, state: AccountState) -> AccountView:
        """A subscription change newer than the account record wins for ARR and plan."""
        if state.subscription_at is None or (self.updated_at is not None and self.updated_at >= state.subscription_at):
            return self
        return AccountView(
            self.account_id,
            self.name,
            state.subscription_plan or self.plan,
            state.subscription_arr if state.subscription_arr is not None else self.arr,
            self.limits,
            self.csm,
            self.ae,
            self.slack_channel,
            self.updated_at,
        )
