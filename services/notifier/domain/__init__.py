"""The notifier's pure rules: what a person reads (Slack Block Kit, plain text), where it goes (routing),
whether it pings at all (fatigue), which targets are safe, and how long to wait before retrying."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from services.notifier.domain.config import FatigueConfig, QuietHours, SlackRoutingConfig
from shared.schemas import Alert, SignalType, Tier

TIER_LABEL = {
    Tier.IMMEDIATE: "Immediate — reach out this week",
    Tier.SHORT_TERM: "Short-term — next outreach cycle",
    Tier.MEDIUM_TERM: "Medium-term — nurture and monitor",
    Tier.LOW: "Low — focus on adoption first",
}
# Slack's limits: https://api.slack.com/reference/block-kit/blocks
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
MAX_FIELDS = 10
HEADER_TEXT_LIMIT = 150
MAX_BLOCKS = 50
BUTTON_VALUE_LIMIT = 2000
MESSAGE_TEXT_LIMIT = 40_000


def signal_summary(alert: Alert) -> str:
    signal = alert.signal
    if signal.type == SignalType.USAGE_THRESHOLD_CROSSED:
        return (
            f"{signal.metric} crossed {signal.threshold:.0%} of its limit ({signal.value:g} / {signal.limit:g}, {signal.utilization:.0%})"
        )
    if signal.type == SignalType.NEW_DOMAIN_USER and signal.user is not None:
        return f"new user {signal.user.email} from {signal.domain}"
    return signal.type.value.replace("_", " ")


def usage_summary(alert: Alert) -> str:
    if not alert.usage:
        return "no limit reached yet"
    return ", ".join(f"{line.metric} {line.value:g} / {line.limit:g} ({line.utilization:.0%})" for line in alert.usage)


def plain_text(alert: Alert) -> str:
    return (
        f"{'Retention risk' if alert.kind == 'retention_risk' else 'Expansion signal'} for {alert.account_name}: {signal_summary(alert)}. "
        f"Usage vs limit: {usage_summary(alert)}. Score {alert.score}/100 ({TIER_LABEL[alert.tier]}). "
        f"Estimated expansion ARR: {money(alert.expansion_arr)}. Owner: {alert.owner or 'unassigned'}."
    )


def _clip(text: str, limit: int = SECTION_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(alert: Alert, crm_account_url: str | None = None) -> dict[str, Any]:
    """Block Kit with a plain-text fallback; `text` is what notifications and old clients show."""
    owner = alert.owner or "unassigned"
    drivers = "; ".join(f"{d.factor.replace('_', ' ')}: {d.detail}" for d in alert.drivers) or "no drivers yet"
    fields = [
        f"*Account*\n{alert.account_name} (`{alert.account_id}`)",
        f"*Owner ({alert.route_to.upper()})*\n{owner}" + (f"\ncc {', '.join(alert.informed)}" if alert.informed else ""),
        f"*Signal*\n{signal_summary(alert)}",
        f"*Usage vs limit*\n{usage_summary(alert)}",
        f"*Score and tier*\n{alert.score}/100 — {TIER_LABEL[alert.tier]}" + (f"\n{alert.action}" if alert.action else ""),
        f"*Estimated expansion ARR*\n{money(alert.expansion_arr)}",
    ]
    if alert.motion or alert.arr is not None:
        fields.append(f"*Motion and current ARR*\n{(alert.motion or 'unknown').replace('_', '-')} · {money(alert.arr)}")
    if alert.health is not None or alert.kind == "retention_risk":
        fields.append(f"*Health*\n{'unknown' if alert.health is None else f'{alert.health:.0f}/100'}")
    title = "Retention risk" if alert.kind == "retention_risk" else "Expansion signal"
    context = f"Top drivers: {drivers}"
    if alert.changes:
        context += " · Changed: " + "; ".join(alert.changes)
    if alert.reason:
        context += f" · Why: {alert.reason}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(f"{title}: {alert.account_name}", HEADER_TEXT_LIMIT)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(text, FIELD_TEXT_LIMIT)} for text in fields[:MAX_FIELDS]]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context)}]},
        {"type": "actions", "block_id": _clip(f"alert:{alert.alert_id}", 255), "elements": _buttons(alert, crm_account_url)},
    ]
    return {"text": _clip(plain_text(alert), MESSAGE_TEXT_LIMIT), "blocks": blocks[:MAX_BLOCKS]}


def _buttons(alert: Alert, crm_account_url: str | None) -> list[dict[str, Any]]:
    """Snooze and done come back to the interactivity endpoint carrying the alert id as their value."""
    value = _clip(alert.alert_id, BUTTON_VALUE_LIMIT)
    buttons: list[dict[str, Any]] = []
    if crm_account_url:
        url = crm_account_url.replace("{account_id}", alert.account_id)
        buttons.append({"type": "button", "action_id": "open_crm", "text": _button_text("Open in CRM"), "url": _clip(url, 3000)})
    buttons.append({"type": "button", "action_id": "snooze", "text": _button_text("Snooze 7 days"), "value": value})
    buttons.append({"type": "button", "action_id": "done", "style": "primary", "text": _button_text("Done"), "value": value})
    return buttons


def _button_text(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def money(amount: float | None) -> str:
    return "unknown" if amount is None else f"${amount:,.0f}"


def retry_delay(attempts: int, retry_after_s: float | None, jitter: float, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Exponential backoff with jitter (0 ≤ jitter < 1); a receiver's Retry-After always wins when longer."""
    backoff = min(cap_s, base_s * 2 ** min(max(0, attempts), 64)) * (0.5 + jitter / 2)  # a day of retries never overflows
    return max(backoff, retry_after_s or 0.0)


def gives_up(failed_attempts: int, alert_age_s: float, max_attempts: int, retry_for_s: float) -> bool:
    """The DLQ is for a message that will not go through, not for an outage: a delivery is given up only once it
    failed `max_attempts` times and its alert is `retry_for_s` old, however fast the failures came."""
    return failed_attempts >= max_attempts and alert_age_s >= retry_for_s


# ----------------------------------------------------------------------------- routing


def slack_channel_for(alert: Alert, routing: SlackRoutingConfig, configured: Iterable[str]) -> str:
    """First match wins: the alert's own channel, the owner's, the owner's team's, the tier's, the default.

    A name without a configured webhook is skipped, so a typo in routing falls back instead of failing."""
    available = set(configured)
    owner = alert.owner or ""
    teams = [team for team, owners in routing.teams.items() if owner in owners]
    candidates = [alert.slack_channel, routing.by_owner.get(owner)]
    candidates += [routing.by_team.get(team) for team in teams]
    candidates += [routing.by_tier.get(alert.tier.value), routing.default_channel]
    for candidate in candidates:
        if candidate and candidate in available:
            return candidate
    return routing.default_channel


# ----------------------------------------------------------------------------- fatigue


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


def digest_text(alerts: list[Alert]) -> str:
    """One message for the signals that waited: a line per alert, grouped by account, strongest score first."""
    lines = [f"Expansion digest: {len(alerts)} signal{'s' if len(alerts) != 1 else ''}"]
    for account_alerts in _by_account(alerts):
        first = account_alerts[0]
        lines.append(f"• {first.account_name} — score {first.score}/100 ({TIER_LABEL[first.tier]})")
        lines += [f"    – {signal_summary(a)}" for a in account_alerts]
    return "\n".join(lines)


def _by_account(alerts: list[Alert]) -> list[list[Alert]]:
    groups: dict[str, list[Alert]] = {}
    for alert in sorted(alerts, key=lambda a: (-a.score, a.account_id, a.created_at)):
        groups.setdefault(alert.account_id, []).append(alert)
    return list(groups.values())


# ----------------------------------------------------------------------------- outbound safety


class UnsafeTarget(ValueError):
    """A webhook target that resolves somewhere it must not (loopback, private, link-local, ...)."""


def check_addresses(host: str, addresses: Iterable[str], allow_private: bool) -> None:
    """Every address the host resolves to must be public; one private answer is enough to refuse (DNS rebinding)."""
    resolved = list(addresses)
    if not resolved:
        raise UnsafeTarget(f"webhook host {host!r} does not resolve")
    if allow_private:
        return
    for address in resolved:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise UnsafeTarget(f"webhook host {host!r} resolves to {ip}, a non-public address; set WEBHOOK_ALLOW_PRIVATE=1 to allow it")


# ----------------------------------------------------------------------------- quiet hours


def quiet_until(now: datetime, window: QuietHours) -> datetime | None:
    """When the quiet window `now` falls in ends (UTC), or None outside it."""
    zone = ZoneInfo(window.timezone)
    local = now.astimezone(zone)
    start, end = time.fromisoformat(window.start), time.fromisoformat(window.end)
    if start == end:
        return None
    at = local.time().replace(tzinfo=None)
    inside = start <= at < end if start < end else (at >= start or at < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if start > end and at >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
