"""Where an alert goes: one Slack channel picked by the routing rules, plus every channel that is not Slack."""

from __future__ import annotations

from collections.abc import Iterable

from services.notifier.domain.config import SlackRoutingConfig
from shared.schemas import Alert

SLACK_PREFIX = "slack:"  # delivery channel names of Slack webhooks: slack:<channel name>


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


def delivery_channels(alert: Alert, routing: SlackRoutingConfig, channel_names: Iterable[str]) -> list[str]:
    """One Slack channel (routed by owner/team/tier), plus every non-Slack channel."""
    names = list(channel_names)
    slack_names = [name.removeprefix(SLACK_PREFIX) for name in names if name.startswith(SLACK_PREFIX)]
    chosen = [SLACK_PREFIX + slack_channel_for(alert, routing, slack_names)] if slack_names else []
    return chosen + [name for name in names if not name.startswith(SLACK_PREFIX)]
