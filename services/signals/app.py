"""The signals worker's entrypoint: a Faust app whose one agent keeps account state in a table.

Both input topics are keyed and partitioned by account id, so an account's events and updates
reach the same agent instance, which owns that account's table partition (concurrency 1: one writer).
Signals sent from the agent are attached to the event's offset, so Faust publishes them before it
commits that offset: a crash re-processes the event and re-emits the same signal id, never loses it.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from services.signals.handlers import handle_record, rules_from_config
from shared.config import RadarConfig
from shared.settings import Settings
from shared.topics import Topics

log = logging.getLogger(__name__)

RECORDS = Counter("radar_signals_records", "Records processed, by kind and outcome", ["kind", "outcome"])
SIGNALS = Counter("radar_signals_emitted", "Signals emitted, by type", ["type"])


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def create_app(settings: Settings, config: RadarConfig) -> faust.App:
    topics = Topics.from_settings(settings)
    rules = rules_from_config(config)
    app = faust.App(
        settings.radar_signals_app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store=settings.radar_signals_store,
        topic_partitions=settings.radar_partitions,
        topic_replication_factor=settings.radar_replication_factor,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_bind=settings.radar_host,
        web_port=settings.radar_signals_port,
        web_host=settings.radar_host,
        autodiscover=False,
        key_serializer="json",
        value_serializer="json",
    )
    source = app.topic(
        topics.usage_events, topics.account_updates, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    output = app.topic(topics.expansion_signals, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    # changelog keys and values are JSON (the app-wide serializers below): readable with any Kafka tool
    states = app.Table("account-state", default=None, key_type=str, partitions=settings.radar_partitions)

    @app.agent(source, concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            kind = "account" if message.topic == topics.account_updates else "event"
            account_key = message.key.decode() if message.key else None
            stored: dict[str, Any] | None = states.get(account_key) if account_key else None
            outcome = handle_record(kind, message.key, event.value, stored, rules)
            if outcome.error:
                RECORDS.labels(kind, "rejected").inc()
                log.warning("%s (topic %s partition %s offset %s)", outcome.error, message.topic, message.partition, message.offset)
                continue
            if account_key is None or outcome.state is None:
                continue
            states[account_key] = outcome.state
            RECORDS.labels(kind, "processed").inc()
            for signal in outcome.signals:
                await output.send(key=signal.account_id.encode(), value=signal.model_dump_json().encode())
                SIGNALS.labels(signal.type.value).inc()

    @app.page("/v1/state/{account_id}")
    @app.table_route(table=states, match_info="account_id")
    async def account_state(web: Any, request: Any, account_id: str) -> Any:
        """The live per-account state (limits, this period's usage, thresholds spent), from the owning worker."""
        state = states.get(account_id)
        if state is None:
            return web.json({"detail": f"no state for account {account_id!r}"}, status=404)
        return web.json(state)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        checks = {
            "consumer_assigned": bool(app.consumer.assignment()) if app.consumer else False,
            "not_rebalancing": not app.rebalancing,
            "tables_recovered": app.tables.recovery.completed.is_set(),
        }
        ready = all(checks.values())
        return web.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    return app
