"""Wiring only: the signals worker's Faust app, with its table, Kafka adapters, worker, agent and pages."""

from __future__ import annotations

from services.config import RadarConfig
from services.signals.adapters.positions import KafkaPartitions, Partitions
from services.signals.adapters.recovery_watch import RecoveryWatch, RecoveryWatchService
from services.signals.adapters.sender import FaustProducerSender, Publish, RecordSender, kafka_publisher
from services.signals.adapters.table import account_table
from services.signals.domain.config import Rules
from services.signals.entrypoints.faust_app import SignalsApp, faust_app, input_topic, run_worker
from services.signals.entrypoints.http import add_pages
from services.signals.handlers.worker import SignalsWorker
from shared.settings import Settings
from shared.topics import Topics


def create_app(
    settings: Settings,
    config: RadarConfig,
    publish: Publish | None = None,
    positions: Partitions | None = None,
    sender: RecordSender | None = None,
) -> SignalsApp:
    """`publish`, `positions` and `sender` replace Kafka (unit tests drive the agent with Faust's test context)."""
    topics = Topics.from_settings(settings)
    app = faust_app(settings)
    source = input_topic(app, topics)
    table = account_table(app, settings.radar_partitions)
    if positions is None:
        positions = KafkaPartitions(
            app, settings.kafka_bootstrap_servers, settings.radar_signals_app_id, {topics.usage_events, topics.account_updates}
        )
    sender = sender or FaustProducerSender(app)
    publish = publish or kafka_publisher(sender, topics.expansion_signals)
    rules = Rules.from_config(config.signals)
    app.signals_worker = SignalsWorker(table, publish, topics, rules, settings.radar_partitions, positions, sender)
    app.recovery_watch = RecoveryWatch(settings.radar_signals_recovery_stall_s)
    app.add_dependency(RecoveryWatchService(app, app.recovery_watch, positions))
    run_worker(app, source, app.signals_worker, positions, config.signals)
    add_pages(app, table)
    return app
