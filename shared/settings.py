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
    radar_alert_log: Path = RADAR_HOME / "alerts.ndjson"

    radar_host: str = "127.0.0.1"
    radar_ingest_port: int = 8080
    radar_scoring_port: int = 8081
    radar_notifier_port: int = 8082
    radar_signals_port: int = 8083

    radar_signals_app_id: str = "radar-signals"
    radar_signals_store: str = "memory://"
    radar_consumer_group_prefix: str = "radar"

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
