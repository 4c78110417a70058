"""The notifier's section of the YAML config: retries, routing to Slack channels, quiet hours, fatigue."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.config import Section
from shared.signal_types import SIGNAL_KINDS, SignalType

_TierName = Literal["immediate", "short_term", "medium_term", "low"]


class SlackRoutingConfig(Section):
    """Channel names only: each channel's incoming-webhook URL is a secret, read from RADAR_SLACK_WEBHOOKS."""

    default_channel: str = Field(default="default", min_length=1)
    by_owner: dict[str, str] = {}
    teams: dict[str, list[str]] = Field(default={}, description="team name -> owners in it")
    by_team: dict[str, str] = {}
    by_tier: dict[_TierName, str] = {}
    seconds_per_message: float = Field(default=1.0, ge=0, description="Slack allows about one message a second per webhook")


class FatigueConfig(Section):
    """The seeds cap customer outreach at 1-2 per account per quarter; low-urgency signals wait for the digest."""

    outreach_per_quarter: int = Field(default=2, ge=1)
    digest_signals: list[SignalType] = Field(
        default_factory=lambda: [kind.type for kind in SIGNAL_KINDS.values() if kind.digest_by_default]
    )
    digest_tiers: list[_TierName] = ["medium_term", "low"]
    digest_every_hours: float = Field(default=24, ge=0, description="how often the digest goes out; 0 = only on request")


class QuietHours(Section):
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


class NotifierConfig(Section):
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
