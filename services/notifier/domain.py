"""Turning an alert into what a person reads: Slack Block Kit and a plain-text line. Pure."""

from __future__ import annotations

from typing import Any

from shared.schemas import Alert, SignalType, Tier

TIER_LABEL = {
    Tier.IMMEDIATE: "Immediate — reach out this week",
    Tier.SHORT_TERM: "Short-term — next outreach cycle",
    Tier.MEDIUM_TERM: "Medium-term — nurture and monitor",
    Tier.LOW: "Low — focus on adoption first",
}
SECTION_TEXT_LIMIT = 3000  # Slack's limit for a section's text


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
        f"Expansion signal for {alert.account_name}: {signal_summary(alert)}. "
        f"Usage vs limit: {usage_summary(alert)}. Score {alert.score}/100 ({TIER_LABEL[alert.tier]})."
    )


def _clip(text: str, limit: int = SECTION_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(alert: Alert) -> dict[str, Any]:
    """Block Kit with a plain-text fallback; `text` is what notifications and old clients show."""
    owner = alert.owner or "unassigned"
    drivers = "; ".join(f"{d.factor.replace('_', ' ')}: {d.detail}" for d in alert.drivers) or "no drivers yet"
    fields = [
        f"*Account*\n{alert.account_name} (`{alert.account_id}`)",
        f"*Owner ({alert.route_to.upper()})*\n{owner}",
        f"*Signal*\n{signal_summary(alert)}",
        f"*Usage vs limit*\n{usage_summary(alert)}",
        f"*Score*\n{alert.score}/100 — {TIER_LABEL[alert.tier]}",
    ]
    return {
        "text": _clip(plain_text(alert), 40_000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(f"Expansion signal: {alert.account_name}", 150)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(text, 2000)} for text in fields]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(f"Top drivers: {drivers}")}]},
        ],
    }


def retry_delay(attempts: int, retry_after_s: float | None, jitter: float, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Exponential backoff with jitter (0 ≤ jitter < 1); a receiver's Retry-After always wins when longer."""
    backoff = min(cap_s, base_s * 2 ** max(0, attempts)) * (0.5 + jitter / 2)
    return max(backoff, retry_after_s or 0.0)
