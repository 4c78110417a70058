"""Ingest's section of the YAML config: dedupe, back-pressure, and how Segment and CloudEvents map to events."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from shared.config import Section

_EVENT_COMMON = {"id", "account_id", "timestamp", "type"}


_ACCOUNT_TARGETS = {"name", "domains", "plan", "limits", "arr", "billing_anchor", "owners.csm", "owners.ae", "owners.slack_channel"}


class EventMapping(Section):
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


class SegmentConfig(Section):
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


class CloudEventsConfig(Section):
    """`subject` is the account; `type` maps to an event type, either through `types` or as <native_type_prefix><type>
    with the event's own fields in `data`."""

    native_type_prefix: str = "io.expansionradar."
    types: dict[str, EventMapping] = {}
    unmapped: Literal["ignore", "reject"] = "reject"


class IngestConfig(Section):
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
