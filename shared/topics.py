"""The one place topic names and their settings are declared."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import Settings

USAGE_EVENTS = "usage-events"
ACCOUNT_UPDATES = "account-updates"
EXPANSION_SIGNALS = "expansion-signals"
EXPANSION_ALERTS = "expansion-alerts"
NOTIFICATIONS_DLQ = "notifications-dlq"
PLAN_UPDATES = "plan-updates"
ALERT_ACTIONS = "alert-actions"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class Topics:
    """Topic names with the deployment's prefix applied; every service builds names through this."""

    prefix: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls(prefix=settings.radar_topic_prefix)

    @property
    def usage_events(self) -> str:
        return self.prefix + USAGE_EVENTS

    @property
    def account_updates(self) -> str:
        return self.prefix + ACCOUNT_UPDATES

    @property
    def expansion_signals(self) -> str:
        return self.prefix + EXPANSION_SIGNALS

    @property
    def expansion_alerts(self) -> str:
        return self.prefix + EXPANSION_ALERTS

    @property
    def notifications_dlq(self) -> str:
        return self.prefix + NOTIFICATIONS_DLQ

    @property
    def plan_updates(self) -> str:
        """The plan catalog (PlanUpdate keyed by plan id), compacted like account-updates."""
        return self.prefix + PLAN_UPDATES

    @property
    def alert_actions(self) -> str:
        """What owners did with alerts (AlertAction keyed by account id): the notifier applies the console's to its
        outbox, scoring moves the account's opportunity on every one."""
        return self.prefix + ALERT_ACTIONS

    def specs(self, partitions: int, replication_factor: int = 1) -> list[TopicSpec]:
        """All topics are partitioned by account_id with the same count, so they stay co-partitioned."""
        compacted = {"cleanup.policy": "compact"}
        return [
            TopicSpec(self.usage_events, partitions, replication_factor, {}),
            TopicSpec(self.account_updates, partitions, replication_factor, compacted),
            TopicSpec(self.expansion_signals, partitions, replication_factor, {}),
            TopicSpec(self.expansion_alerts, partitions, replication_factor, {}),
            TopicSpec(self.notifications_dlq, partitions, replication_factor, {}),
            TopicSpec(self.plan_updates, partitions, replication_factor, compacted),
            TopicSpec(self.alert_actions, partitions, replication_factor, {}),
        ]
