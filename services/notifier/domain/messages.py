"""What a person reads: Slack Block Kit with its plain-text fallback, the digest, and the CRM task line."""

from __future__ import annotations

from typing import Any

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
    """The notifier's own wording (tests and people's filters rely on it), not the registry's `summary_of`."""
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


def title(alert: Alert) -> str:
    return "Retention risk" if alert.kind == "retention_risk" else "Expansion signal"


def plain_text(alert: Alert) -> str:
    return (
        f"{title(alert)} for {alert.account_name}: {signal_summary(alert)}. "
        f"Usage vs limit: {usage_summary(alert)}. Score {alert.score}/100 ({TIER_LABEL[alert.tier]}). "
        f"Estimated expansion ARR: {money(alert.expansion_arr)}. Owner: {alert.owner or 'unassigned'}."
    )


def task_subject(alert: Alert) -> str:
    """A CRM task's one-line subject (both CRMs cap it at 255)."""
    return f"{title(alert)}: {alert.account_name} — {signal_summary(alert)}"[:255]


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
    context = f"Top drivers: {drivers}"
    if alert.changes:
        context += " · Changed: " + "; ".join(alert.changes)
    if alert.reason:
        context += f" · Why: {alert.reason}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(f"{title(alert)}: {alert.account_name}", HEADER_TEXT_LIMIT)}},
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
