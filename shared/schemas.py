"""Event, account, signal and alert schemas: the contracts on every topic and HTTP edge."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from shared.signal_types import SignalType

# ids become primary keys in PostgreSQL, whose text cannot hold NUL: refused at the edge, not a 500 in the query
NO_NUL = r"^[^\x00]+$"
Identifier = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _aware_utc(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC so event time never depends on the server's zone. Others keep their
    instant; one already at offset zero (the usual `...Z`) is returned as parsed: a `replace` would cost more
    than the rest of the event's validation."""
    offset = value.utcoffset()
    if offset is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC) if offset else value


Timestamp = Annotated[datetime, AfterValidator(_aware_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Unknown fields are refused: a typo in a producer must not silently drop data."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- events


class _EventBase(Contract):
    id: Identifier = Field(description="idempotency key: a replayed id is a duplicate")
    account_id: Identifier
    timestamp: Timestamp = Field(description="event time (ISO 8601); naive means UTC")


class UsageEvent(_EventBase):
    type: Literal["usage"]
    metric: Name
    quantity: float = Field(ge=0, description="consumption added to the current billing period")


class GaugeEvent(_EventBase):
    type: Literal["gauge"]
    metric: Name
    value: float = Field(ge=0, description="the current level")


class UserRef(Contract):
    id: Identifier
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    team: Name | None = None

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1].lower()


class UserAddedEvent(_EventBase):
    type: Literal["user_added"]
    user: UserRef


class UserRemovedEvent(_EventBase):
    type: Literal["user_removed"]
    user: UserRef


class FeatureUsedEvent(_EventBase):
    type: Literal["feature_used"]
    feature: Name
    user_id: Identifier | None = None
    gated: bool = False


class IntegrationConnectedEvent(_EventBase):
    type: Literal["integration_connected"]
    integration: Name


class NpsEvent(_EventBase):
    type: Literal["nps"]
    score: int = Field(ge=0, le=10)


class CsatEvent(_EventBase):
    type: Literal["csat"]
    score: float = Field(ge=1, le=5)


class SupportTicketEvent(_EventBase):
    type: Literal["support_ticket"]
    priority: Literal["low", "normal", "high", "urgent"]
    status: Literal["open", "pending", "solved", "closed"]


class BillingIssueEvent(_EventBase):
    type: Literal["billing_issue"]
    kind: Name


class SubscriptionChangedEvent(_EventBase):
    type: Literal["subscription_changed"]
    arr_before: float = Field(ge=0)
    arr_after: float = Field(ge=0)
    plan: Identifier | None = None
    reason: Literal["upgrade", "downgrade", "churn", "renewal", "new", "other"]


Event = Annotated[
    UsageEvent
    | GaugeEvent
    | UserAddedEvent
    | UserRemovedEvent
    | FeatureUsedEvent
    | IntegrationConnectedEvent
    | NpsEvent
    | CsatEvent
    | SupportTicketEvent
    | BillingIssueEvent
    | SubscriptionChangedEvent,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
# event type name -> its model (mappings in the YAML config are checked against these fields)
EVENT_MODELS: dict[str, type[Contract]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(get_args(Event)[0])
}


class EventBatch(Contract):
    events: list[Event] = Field(min_length=1, max_length=10_000)


class IngestResult(Contract):
    accepted: int
    duplicates: int


class SourceIngestResult(IngestResult):
    """Segment and CloudEvents answers: `ignored` counts messages no mapping applies to (page, screen, unmapped names)."""

    ignored: int = 0


class SegmentResult(SourceIngestResult):
    """Segment's clients treat any 2xx as delivered; `success` is what Segment's own API answers."""

    success: bool = True


# ----------------------------------------------------------------------------- accounts


class Owners(Contract):
    csm: Name | None = None
    ae: Name | None = None
    slack_channel: Name | None = None


class AccountUpsert(Contract):
    """Body of `PUT /v1/accounts/{account_id}`."""

    name: Name
    domains: list[Annotated[str, Field(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")]] = []
    plan: Identifier | None = None
    limits: dict[Name, Annotated[float, Field(gt=0)]] = {}
    arr: float = Field(default=0, ge=0)
    owners: Owners = Owners()
    billing_anchor: date | None = Field(default=None, description="start of the monthly billing cycle (UTC)")


class AccountUpdate(AccountUpsert):
    """What travels on the compacted `account-updates` topic, keyed by account id."""

    account_id: Identifier
    updated_at: Timestamp


class PlanUpsert(Contract):
    limits: dict[Name, Annotated[float, Field(gt=0)]] = {}
    price: float = Field(ge=0)
    next_plan: Identifier | None = None


class PlanUpdate(PlanUpsert):
    """What travels on the compacted `plan-updates` topic, keyed by plan id; `price` is the plan's ARR."""

    plan_id: Identifier
    updated_at: Timestamp


# ----------------------------------------------------------------------------- signals


class Signal(Contract):
    """One expansion signal; `signal_id` is derived from the crossing so a re-emission is recognisable."""

    signal_id: Identifier
    type: SignalType
    account_id: Identifier
    metric: Name | None = None
    value: float | None = None
    limit: float | None = None
    utilization: float | None = None
    threshold: float | None = None
    period: str | None = None
    user: UserRef | None = None
    domain: str | None = None
    team: str | None = None
    feature: str | None = None
    tries: int | None = Field(default=None, description="premium_feature_interest: tries within the window")
    previous_value: float | None = Field(default=None, description="usage_growth: last week's total; sustained: last period's")
    growth: float | None = Field(default=None, description="usage_growth: this week over last week, minus 1")
    event_id: Identifier
    event_timestamp: Timestamp
    emitted_at: Timestamp


# ----------------------------------------------------------------------------- alerts


class Tier(StrEnum):
    IMMEDIATE = "immediate"
    SHORT_TERM = "short_term"
    MEDIUM_TERM = "medium_term"
    LOW = "low"


class Driver(Contract):
    factor: str
    points: float
    detail: str


class UsageLine(Contract):
    metric: str
    value: float
    limit: float
    utilization: float


class Alert(Contract):
    """An actionable alert; `alert_id` is stable per signal so every stage downstream is idempotent.

    The notifier renders these fields as they are; scoring decides them (kind, routing, money, health).
    """

    alert_id: Identifier
    kind: Literal["expansion", "retention_risk"] = "expansion"
    account_id: Identifier
    account_name: str
    signal: Signal
    score: int = Field(ge=0, le=100)
    tier: Tier
    drivers: list[Driver] = Field(description="the top contributing factors, strongest first")
    changes: list[str] = Field(default_factory=list, description="what changed since the account's previous score")
    usage: list[UsageLine] = Field(default_factory=list, description="usage vs limits known when the alert was raised")
    motion: Literal["upsell", "cross_sell", "strategic"] | None = None
    expansion_arr: float | None = Field(default=None, ge=0, description="estimated expansion ARR")
    arr: float | None = Field(default=None, ge=0, description="the account's current ARR")
    health: float | None = Field(default=None, description="0-100; None means unknown (no health data yet)")
    route_to: Literal["csm", "ae"] = "csm"
    owner: str | None = None
    informed: list[str] = Field(default_factory=list, description="people kept informed (the CSM when an AE owns it)")
    slack_channel: str | None = None
    created_at: Timestamp
    expansion_basis: str | None = Field(default=None, description="how expansion_arr was estimated from the plan catalog")
    reason: str | None = Field(default=None, description="why a retention_risk alert replaced an expansion one")
    action: str | None = Field(default=None, description="the model's recommended action for the score")


ActionKind = Literal["done", "dismissed", "snoozed"]
SNOOZE_WITHOUT_DATE = timedelta(days=7)  # what a snooze button (Slack's, the console's) holds an account for


class AlertAction(Contract):
    """An owner's action on an alert, on `alert-actions` keyed by account id. `origin` says where the click was
    made: the notifier applied its own (API, Slack buttons) before publishing them; it applies the console's on
    receipt. Scoring moves the account's opportunity on every one. Applying one twice changes nothing."""

    action_id: Identifier = Field(description="unique per click, so a consumer can recognise a repeat")
    alert_id: Identifier
    account_id: Identifier
    action: ActionKind
    reason: str | None = None
    actor: str
    snoozed_until: Timestamp | None = Field(default=None, description="snoozed: until when the account's alerts wait")
    origin: Literal["notifier", "console"]
    at: Timestamp

    @classmethod
    def clicked(
        cls,
        *,
        alert_id: str,
        account_id: str,
        action: ActionKind,
        reason: str | None,
        actor: str,
        origin: Literal["notifier", "console"],
        snoozed_until: datetime | None = None,
    ) -> AlertAction:
        """A new click, with its own id and time; a snooze without a date holds for SNOOZE_WITHOUT_DATE."""
        at = utcnow()
        if action == "snoozed" and snoozed_until is None:
            snoozed_until = at + SNOOZE_WITHOUT_DATE
        return cls(
            action_id=uuid.uuid4().hex,
            alert_id=alert_id,
            account_id=account_id,
            action=action,
            reason=reason,
            actor=actor,
            snoozed_until=snoozed_until,
            origin=origin,
            at=at,
        )
