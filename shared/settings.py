"""Endpoints and secrets come from the environment; everything tunable lives in the YAML config."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

RADAR_HOME = Path(".radar")


class Settings(BaseSettings):
    """Read from environment variables named like the fields (case-insensitive)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = f"sqlite+aiosqlite:///{RADAR_HOME}/radar.db"
    radar_config: Path | None = Field(default=None, description="path of the YAML config")
    radar_topic_prefix: str = Field(default="", description="prefix for every topic name (tests, multi-tenant clusters)")
    radar_partitions: int = Field(default=4, ge=1)
    radar_replication_factor: int = Field(default=1, ge=1)

    slack_webhook_url: SecretStr | None = None
    # notifier: one incoming webhook per Slack channel ({"channel": "url"}, JSON), a signed generic webhook,
    # the Slack app's signing secret for its buttons, and where "open in CRM" points ({account_id} filled in)
    radar_slack_webhooks: dict[str, SecretStr] = {}
    radar_slack_signing_secret: SecretStr | None = None
    radar_crm_account_url: str | None = None
    webhook_url: SecretStr | None = None
    webhook_secret: SecretStr | None = Field(default=None, description="whsec_ + base64, per the Standard Webhooks spec")
    webhook_allow_private: bool = Field(default=False, description="allow loopback/private webhook targets (tests, on-prem)")
    # CRM channels, on when their token is set: a HubSpot private-app token, a Salesforce OAuth access token
    hubspot_access_token: SecretStr | None = None
    hubspot_base_url: str = "https://api.hubapi.com"
    salesforce_access_token: SecretStr | None = None
    salesforce_instance_url: str | None = None
    salesforce_api_version: str = "v60.0"
    radar_alert_log: Path = RADAR_HOME / "alerts.ndjson"

    radar_host: str = "127.0.0.1"
    radar_ingest_port: int = 8080
    radar_scoring_port: int = 8081
    radar_notifier_port: int = 8082
    radar_signals_port: int = 8083

    radar_signals_app_id: str = "radar-signals"
    # memory:// recovers every state from the changelog at start; rocksdb:// (production, deploy/) keeps them on disk
    # under the data directory, so a restarted worker reads only the changelog written since
    radar_signals_store: str = Field(default="memory://", pattern="^(memory|rocksdb)://")
    radar_signals_data_dir: Path | None = None  # Faust's data directory (RocksDB tables); default `<app id>-data` here
    # Faust's default of 60 s makes some brokers (Tansu) hold a new group's first join ~30 s, and a dead
    # worker's partitions wait that long to move; 10 s is aiokafka's own default
    radar_signals_session_timeout_s: float = Field(default=10.0, gt=0)
    # how long table recovery may receive no changelog record, while some remain, before the worker looks at why
    radar_signals_recovery_stall_s: float = Field(default=30.0, gt=0)
    radar_consumer_group_prefix: str = "radar"
    # Kafka static membership (KIP-345): a stable id per worker (the StatefulSet pod name in deploy/k8s) lets a
    # restarted worker rejoin with its partitions and local table state without a group-wide rebalance
    radar_consumer_group_instance_id: str | None = None

    radar_produce_timeout_s: float = Field(default=10.0, gt=0)
    radar_log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    radar_log_level: str = "INFO"

    @property
    def scoring_group(self) -> str:
        return f"{self.radar_consumer_group_prefix}-scoring"

    @property
    def notifier_group(self) -> str:
        return f"{self.radar_consumer_group_prefix}-notifier"


@lru_cache
def get_settings() -> Settings:
    return Settings()
