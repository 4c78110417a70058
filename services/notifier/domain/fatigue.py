"""Whether an alert pings its owner, waits for the digest or is dropped: opt-outs, open alerts on the same topic,
snoozes, the quarter's outreach cap and low-urgency signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from services.notifier.domain.config import FatigueConfig
from shared.schemas import Alert


class Route(StrEnum):
    PING = "ping"
    DIGEST = "digest"
    DROP = "drop"


@dataclass(frozen=True)
class Decision:
    route: Route
    reason: str


@dataclass(frozen=True)
class AccountAttention:
    """What people already did about an account: the inputs of the fatigue rules."""

    open_levels: dict[str, float] = field(default_factory=dict)  # topic key -> highest open level
    snoozed_until: datetime | None = None
    opted_out: bool = False
    outreaches_this_quarter: int = 0


def topic_key(alert: Alert) -> str:
    """Alerts about the same thing: account, signal type, the metric (or user, team, feature) and billing period.

    A new billing period, or another new user, is another thing, not a repeat."""
    signal = alert.signal
    subject = signal.metric or (signal.user.email if signal.user else None) or signal.team or signal.feature or signal.domain or ""
    return f"{alert.account_id}|{signal.type.value}|{subject}|{signal.period or ''}"


def alert_level(alert: Alert) -> float:
    """How urgent within its topic: the threshold crossed (0.8 < 0.95), else the utilisation, else 0."""
    signal = alert.signal
    if signal.threshold is not None:
        return signal.threshold
    return signal.utilization or 0.0


def decide(alert: Alert, attention: AccountAttention, fatigue: FatigueConfig, now: datetime) -> Decision:
    if attention.opted_out:
        return Decision(Route.DROP, "the account is opted out of alerts")
    open_level = attention.open_levels.get(topic_key(alert))
    if open_level is not None and alert_level(alert) <= open_level:
        return Decision(Route.DROP, f"an open alert already covers this at {open_level:g}")
    if attention.snoozed_until is not None and attention.snoozed_until > now:
        return Decision(Route.DIGEST, f"the account is snoozed until {attention.snoozed_until.isoformat()}")
    if attention.outreaches_this_quarter >= fatigue.outreach_per_quarter:
        return Decision(Route.DIGEST, f"{attention.outreaches_this_quarter} outreaches logged this quarter")
    if alert.signal.type.value in fatigue.digest_signals and alert.tier.value in fatigue.digest_tiers:
        return Decision(Route.DIGEST, f"{alert.signal.type.value} for a {alert.tier.value} account waits for the digest")
    return Decision(Route.PING, "new")


def quarter_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)
