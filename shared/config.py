"""The YAML config model: thresholds, score weights and tiers. Bad files stop the service, naming the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """Raised at start-up; the message names the offending key so the fix is obvious."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(gt=0, le=2)]


class SignalsConfig(_Section):
    usage_thresholds: list[Fraction] = [0.8, 0.9, 0.95]
    recent_event_ids_per_account: int = Field(
        default=48,
        ge=0,
        description="event ids each account remembers, to drop a duplicate that got past ingest (its 7-day store is the"
        " real guard), as 64-bit hashes: every state write carries them, 10.7 bytes each, so a larger window costs"
        " changelog bytes on every flush; a hash shared by two ids drops an event with probability window / 2**64",
    )
    seat_metric: str = Field(default="seats", min_length=1, description="the limit name seats count against")
    seat_thresholds: list[Fraction] = [0.8, 0.9, 0.95]
    sustained_utilization: Fraction = 0.8
    sustained_periods: int = Field(default=2, ge=2)
    premium_feature_tries: int = Field(default=3, ge=1)
    premium_feature_window_days: float = Field(default=14, gt=0)
    growth_rate: float = Field(default=0.5, gt=0, description="week-over-week growth (0.5 = +50 %) that signals usage_growth")
    growth_min_previous_week: float = Field(default=100, ge=0, description="a smaller previous week is too little to compare")
    batch_size: int = Field(default=5_000, ge=1, description="events the worker takes at once")
    batch_wait_seconds: float = Field(default=0.02, gt=0, le=5, description="longest wait to fill a batch (adds to latency)")
    state_flush_seconds: float = Field(default=1.0, gt=0, le=60, description="how often changed account state is written")

    @field_validator("usage_thresholds", "seat_thresholds")
    @classmethod
    def _ascending_unique(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("at least one threshold is needed")
        if sorted(set(value)) != value:
            raise ValueError("thresholds must be unique and ascending, e.g. [0.8, 0.9, 0.95]")
        return value


class ScoreWeights(_Section):
    """The five parts of the seeds' readiness model; they must add up to 100."""

    product_usage: float = Field(default=30, ge=0)
    satisfaction: float = Field(default=25, ge=0)
    growth: float = Field(default=20, ge=0)
    relationship: float = Field(default=15, ge=0)
    expansion_potential: float = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _sum_to_100(self) -> ScoreWeights:
        total = sum(self.model_dump().values())
        if abs(total - 100) > 1e-9:
            raise ValueError(f"weights must add up to 100, they add up to {total:g}")
        return self


class TierBounds(_Section):
    """Lower bounds of each tier (inclusive); below `medium_term` is Low."""

    immediate: int = Field(default=80, ge=0, le=100)
    short_term: int = Field(default=60, ge=0, le=100)
    medium_term: int = Field(default=40, ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> TierBounds:
        if not self.immediate > self.short_term > self.medium_term:
            raise ValueError("tier bounds must satisfy immediate > short_term > medium_term")
        return self


class Band(_Section):
    """One band of a factor: numeric [min, max) (a value on a boundary takes the higher band) or a named value."""

    min: float | None = None
    max: float | None = None
    value: str | None = None
    points: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Band:
        if self.value is not None and (self.min is not None or self.max is not None):
            raise ValueError("a band is numeric (min/max) or named (value), not both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min {self.min:g} must be below max {self.max:g}")
        return self


def _check_bands(bands: list[Band]) -> list[Band]:
    if not bands:
        raise ValueError("at least one band is needed")
    named = [band.value for band in bands if band.value is not None]
    if named:
        if len(named) != len(bands):
            raise ValueError("bands must be all numeric or all named")
        if len(set(named)) != len(named):
            raise ValueError(f"named bands repeat a value: {named}")
        return bands
    ordered = sorted(bands, key=lambda band: -math.inf if band.min is None else band.min)
    for lower, upper in zip(ordered, ordered[1:], strict=False):
        upper_min = -math.inf if upper.min is None else upper.min
        if lower.max is None or lower.max > upper_min:
            raise ValueError(f"bands overlap: [{lower.min}, {lower.max}) and [{upper.min}, {upper.max})")
    return bands


Bands = Annotated[list[Band], AfterValidator(_check_bands)]


def _bands(*rows: tuple[float | None, float | None, float]) -> list[Band]:
    return [Band(min=low, max=high, points=points) for low, high, points in rows]


def _named(**points: float) -> list[Band]:
    return [Band(value=value, points=p) for value, p in points.items()]


class ProductUsageBands(_Section):
    """Shares are fractions (0.7 = 70 %)."""

    adoption_rate: Bands = _bands((0.7, None, 15), (0.5, 0.7, 10), (0.3, 0.5, 5), (None, 0.3, 2))
    weekly_active_share: Bands = _bands((0.6, None, 8), (0.4, 0.6, 5), (0.2, 0.4, 3), (None, 0.2, 1))
    feature_breadth: Bands = _bands((0.5, None, 7), (0.3, 0.5, 4), (0.2, 0.3, 2), (None, 0.2, 1))


class SatisfactionBands(_Section):
    nps: Bands = _bands((9, None, 15), (7, 9, 8), (None, 7, 2))
    csat: Bands = _bands((4.5, None, 5), (4.0, 4.5, 3), (None, 4.0, 1))
    support_ticket_trend: Bands = _named(decreasing=5, stable=3, increasing=1)


class GrowthBands(_Section):
    team_growth: Bands = _bands((0.3, None, 8), (0.1, 0.3, 5), (0, 0.1, 3), (None, 0, 1))
    funding: Bands = _named(recent_round=6, revenue_growth=4, none=2)
    open_roles: Bands = _bands((20, None, 6), (5, 20, 4), (None, 5, 1))


class RelationshipBands(_Section):
    engaged_stakeholders: Bands = _bands((6, None, 8), (3, 6, 5), (None, 3, 2))
    executive_sponsor: Bands = _named(active=7, moderate=4, limited=1)


class ExpansionPotentialBands(_Section):
    """`acv_vs_segment` is the account's ARR over `segment_average_acv`."""

    acv_vs_segment: Bands = _bands((None, 0.9, 5), (0.9, 1.1, 3), (1.1, None, 1))
    expansion_options: Bands = _bands((3, None, 5), (1, 3, 3), (None, 1, 1))


class ReadinessBands(_Section):
    product_usage: ProductUsageBands = ProductUsageBands()
    satisfaction: SatisfactionBands = SatisfactionBands()
    growth: GrowthBands = GrowthBands()
    relationship: RelationshipBands = RelationshipBands()
    expansion_potential: ExpansionPotentialBands = ExpansionPotentialBands()


class OpportunityConfig(_Section):
    """The seeds' simpler 1-10 opportunity score: each dimension 1-10, the score is their mean."""

    revenue_potential: Bands = _bands((1.0, None, 10), (0.5, 1.0, 8), (0.2, 0.5, 6), (0.05, 0.2, 4), (None, 0.05, 2))
    usage_trajectory: Bands = _bands((0.95, None, 10), (0.9, 0.95, 8), (0.8, 0.9, 6), (0.5, 0.8, 4), (None, 0.5, 2))
    competitive_safety: Bands = _bands((80, None, 10), (70, 80, 7), (50, 70, 4), (None, 50, 1))
    strategic_importance: Bands = _bands((2.0, None, 10), (1.1, 2.0, 7), (0.9, 1.1, 5), (None, 0.9, 3))
    decision_maker_access: Bands = _named(active=10, moderate=6, limited=2)
    immediate: int = Field(default=8, ge=1, le=10)
    quarterly: int = Field(default=6, ge=1, le=10)
    annual: int = Field(default=4, ge=1, le=10)

    @model_validator(mode="after")
    def _descending(self) -> OpportunityConfig:
        if not self.immediate > self.quarterly > self.annual:
            raise ValueError("action triggers must satisfy immediate > quarterly > annual")
        return self


class HealthWeights(_Section):
    satisfaction: float = Field(default=40, ge=0)
    support_trend: float = Field(default=20, ge=0)
    billing: float = Field(default=20, ge=0)
    usage_trend: float = Field(default=20, ge=0)

    @model_validator(mode="after")
    def _sum_to_100(self) -> HealthWeights:
        total = sum(self.model_dump().values())
        if abs(total - 100) > 1e-9:
            raise ValueError(f"weights must add up to 100, they add up to {total:g}")
        return self


class HealthConfig(_Section):
    """Below `threshold` (or with an open billing issue) an account gets a retention alert, not an expansion one."""

    threshold: float = Field(default=70, ge=0, le=100)
    weights: HealthWeights = HealthWeights()
    trend_window_days: int = Field(default=30, ge=1)
    trend_tolerance: float = Field(default=0.2, ge=0, lt=1)
    billing_resolved_kinds: list[str] = ["resolved", "paid", "payment_succeeded"]
    billing_issue_open_days: int = Field(default=30, ge=1)


class RoutingConfig(_Section):
    """The seeds' ownership table: small upsell → CSM; large upsell, cross-sell, strategic → AE with the CSM."""

    large_upsell_share: float = Field(default=0.2, gt=0)
    strategic_share: float = Field(default=1.0, gt=0)
    default_owner: str | None = None
    # expansion alerts below this tier are not actionable (the seeds: "focus on adoption before expansion")
    min_alert_tier: Literal["immediate", "short_term", "medium_term", "low"] = "medium_term"


class ScoringConfig(_Section):
    model: Literal["readiness", "opportunity"] = "readiness"
    weights: ScoreWeights = ScoreWeights()
    tiers: TierBounds = TierBounds()
    bands: ReadinessBands = ReadinessBands()
    segment_average_acv: float = Field(default=50_000, gt=0)
    opportunity: OpportunityConfig = OpportunityConfig()
    health: HealthConfig = HealthConfig()
    routing: RoutingConfig = RoutingConfig()


_TierName = Literal["immediate", "short_term", "medium_term", "low"]
_SignalName = Literal[
    "usage_threshold_crossed",
    "usage_sustained_high",
    "seat_threshold_crossed",
    "new_domain_user",
    "new_team_adoption",
    "premium_feature_interest",
    "usage_growth",
]


class SlackRoutingConfig(_Section):
    """Channel names only: each channel's incoming-webhook URL is a secret, read from RADAR_SLACK_WEBHOOKS."""

    default_channel: str = Field(default="default", min_length=1)
    by_owner: dict[str, str] = {}
    teams: dict[str, list[str]] = Field(default={}, description="team name -> owners in it")
    by_team: dict[str, str] = {}
    by_tier: dict[_TierName, str] = {}
    seconds_per_message: float = Field(default=1.0, ge=0, description="Slack allows about one message a second per webhook")


class FatigueConfig(_Section):
    """The seeds cap customer outreach at 1-2 per account per quarter; low-urgency signals wait for the digest."""

    outreach_per_quarter: int = Field(default=2, ge=1)
    digest_signals: list[_SignalName] = ["usage_growth", "premium_feature_interest", "new_team_adoption"]
    digest_tiers: list[_TierName] = ["medium_term", "low"]
    digest_every_hours: float = Field(default=24, ge=0, description="how often the digest goes out; 0 = only on request")


class QuietHours(_Section):
    """Deliveries on the channel wait from `start` to `end` (local times, "HH:MM", quoted in YAML); may span midnight."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. Europe/Berlin") from None
        return value


class NotifierConfig(_Section):
    max_attempts: int = Field(default=8, ge=1, description="a delivery goes to the DLQ after this many failed attempts...")
    retry_for_seconds: float = Field(
        default=86_400, ge=0, description="...and once its alert is this old: a receiver's outage shorter than this loses nothing"
    )
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_cap_seconds: float = Field(default=300.0, gt=0)
    claim_seconds: float = Field(default=60.0, gt=0, description="how long a sender holds a claimed delivery")
    crm_create_deals: bool = Field(default=False, description="also open a HubSpot deal / Salesforce Opportunity per expansion alert")
    quiet_hours: dict[str, QuietHours] = Field(default={}, description="per delivery channel: slack:<name>, webhook, hubspot, ...")
    slack: SlackRoutingConfig = SlackRoutingConfig()
    fatigue: FatigueConfig = FatigueConfig()


class OutcomesConfig(_Section):
    """Revenue outcomes and signal precision (`GET /v1/metrics/*`, `radar report`, the weekly Slack summary)."""

    precision_window_days: float = Field(default=90, gt=0, description="an alerted account that expands within this many days is a hit")
    segments: dict[str, float] = Field(
        default={"smb": 0, "mid_market": 25_000, "enterprise": 100_000},
        description="segment name -> lowest ARR in it; an account's segment is its ARR at the start of the period",
    )
    summary_every_hours: float = Field(default=168, ge=0, description="the owner's expansion summary to Slack; 0 = off")

    @field_validator("segments")
    @classmethod
    def _segments(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one segment is needed, e.g. {all: 0}")
        if min(value.values()) != 0:
            raise ValueError("one segment must start at 0 so every account has a segment")
        if len(set(value.values())) != len(value):
            raise ValueError("two segments start at the same ARR")
        return value


_EVENT_COMMON = {"id", "account_id", "timestamp", "type"}
_ACCOUNT_TARGETS = {"name", "domains", "plan", "limits", "arr", "billing_anchor", "owners.csm", "owners.ae", "owners.slack_channel"}


class EventMapping(_Section):
    """How one Segment `track` event or CloudEvents `type` becomes a native event: `set` gives fields literal values,
    `from` reads fields from the incoming message by dotted path (properties.count, data.metric, context.groupId);
    a path that is absent leaves the field to `set` or the event's default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: str
    set: dict[str, str | int | float | bool] = {}
    from_: dict[str, str] = Field(default={}, alias="from")

    @model_validator(mode="after")
    def _known_fields(self) -> EventMapping:
        from shared.schemas import EVENT_MODELS

        model = EVENT_MODELS.get(self.type)
        if model is None:
            raise ValueError(f"unknown event type {self.type!r}; one of {', '.join(EVENT_MODELS)}")
        allowed = set(model.model_fields) - _EVENT_COMMON
        for target in [*self.set, *self.from_]:
            if target.split(".", 1)[0] not in allowed:
                raise ValueError(f"{self.type} events have no field {target!r}; they have {', '.join(sorted(allowed))}")
        for target, path in self.from_.items():
            if not path or path.startswith(".") or path.endswith("."):
                raise ValueError(f"from.{target}: {path!r} is not a dotted path such as properties.count")
        return self


def _default_track() -> dict[str, EventMapping]:
    return {
        "Usage Recorded": EventMapping(
            type="usage", set={"quantity": 1}, from_={"metric": "properties.metric", "quantity": "properties.quantity"}
        ),
        "Gauge Recorded": EventMapping(type="gauge", from_={"metric": "properties.metric", "value": "properties.value"}),
        "Feature Used": EventMapping(
            type="feature_used", from_={"feature": "properties.feature", "gated": "properties.gated", "user_id": "userId"}
        ),
        "Integration Connected": EventMapping(type="integration_connected", from_={"integration": "properties.integration"}),
    }


class SegmentConfig(_Section):
    """Segment's HTTP tracking API: which message field names the account, and how calls map to events and accounts."""

    account_id_paths: list[str] = Field(
        default=["context.groupId", "properties.account_id", "traits.account_id", "context.traits.account_id"], min_length=1
    )
    track: dict[str, EventMapping] = Field(default_factory=_default_track, description="track event name -> native event")
    unmapped_track: Literal["ignore", "reject"] = "ignore"
    group_traits: dict[str, str] = Field(
        default={
            "name": "name",
            "domains": "domains",
            "plan": "plan",
            "limits": "limits",
            "arr": "arr",
            "billing_anchor": "billing_anchor",
            "owners.csm": "csm",
            "owners.ae": "ae",
            "owners.slack_channel": "slack_channel",
        },
        description="account field -> group trait (dotted path under traits)",
    )
    limit_trait_prefix: str = Field(default="limit_", description="traits named <prefix><metric> set limits.<metric>")
    user_traits: dict[Literal["email", "team"], str] = {"email": "email", "team": "team"}

    @field_validator("group_traits")
    @classmethod
    def _account_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - _ACCOUNT_TARGETS)
        if unknown:
            raise ValueError(f"unknown account field(s) {', '.join(unknown)}; use {', '.join(sorted(_ACCOUNT_TARGETS))}")
        return value


class CloudEventsConfig(_Section):
    """`subject` is the account; `type` maps to an event type, either through `types` or as <native_type_prefix><type>
    with the event's own fields in `data`."""

    native_type_prefix: str = "io.expansionradar."
    types: dict[str, EventMapping] = {}
    unmapped: Literal["ignore", "reject"] = "reject"


class IngestConfig(_Section):
    dedupe_window_days: float = Field(default=7, gt=0, description="a replayed event id within this window is a duplicate")
    dedupe_prune_every_seconds: float = Field(default=600, gt=0)
    max_inflight_requests: int = Field(default=512, ge=1, description="more requests waiting on Kafka than this get 503 at once")
    retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    claim_lease_seconds: float = Field(
        default=30,
        gt=0,
        description="an id claimed but not marked produced (its request failed or its process died) is reclaimed after this",
    )
    segment: SegmentConfig = SegmentConfig()
    cloudevents: CloudEventsConfig = CloudEventsConfig()


class RadarConfig(_Section):
    signals: SignalsConfig = SignalsConfig()
    scoring: ScoringConfig = ScoringConfig()
    notifier: NotifierConfig = NotifierConfig()
    ingest: IngestConfig = IngestConfig()
    outcomes: OutcomesConfig = OutcomesConfig()


def _key_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def parse_config(data: object, source: str = "config") -> RadarConfig:
    if data is None:
        data = {}
    try:
        return RadarConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_key_path(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_config(path: Path | None) -> RadarConfig:
    """No path means the built-in defaults (the seeds' model)."""
    if path is None:
        return RadarConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"RADAR_CONFIG={path}: cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return parse_config(data, source=str(path))
