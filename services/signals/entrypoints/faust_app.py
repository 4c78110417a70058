"""The signals worker's Faust app: its settings, its input topic, and the one agent (with its timers and signal
handlers) that hands each batch to the worker (handlers/worker.py).

Both input topics are keyed and partitioned by account id, so an account's events and updates reach the same agent,
which owns that account's table partition (concurrency 1: one writer per table).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, cast

import faust
from faust.tables.manager import TableManager
from faust.types import AppT, EventT, StreamT, TopicT
from mode.types.signals import BaseSignalT

from services.signals.adapters.positions import Partitions
from services.signals.adapters.recovery_watch import RecoveryWatch
from services.signals.domain.config import SignalsConfig
from services.signals.handlers.worker import SignalsWorker
from shared.settings import Settings
from shared.topics import Topics

# how long a partition with unread records may stay silent before it is read again from its position
STALL_CHECK_SECONDS = 5.0


class SignalsApp(faust.App):
    """The Faust app, carrying what its pages show (and tests look at)."""

    signals_worker: SignalsWorker
    recovery_watch: RecoveryWatch


class BatchedStream(Protocol):
    """What the agent uses of Faust's stream beyond `StreamT`'s own types."""

    def noack_take(self, max_: int, within: float) -> AsyncIterator[Sequence[EventT]]: ...


def tune_garbage_collector() -> None:
    """A batch holds up to hundreds of thousands of short-lived event objects, and the default thresholds then
    run the cyclic collector over them hundreds of times a second (~12 % of the rules path, measured). The
    state itself holds no cycles worth chasing often."""
    gc.collect()
    gc.freeze()  # what start-up built (modules, Faust's app) is never garbage: out of every later scan
    gc.set_threshold(50_000, 20, 10)


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def recovery_done(app: AppT) -> bool:
    """Whether the tables' recovery (Faust's changelog read at start-up and after each rebalance) has completed."""
    return cast(TableManager, app.tables).recovery.completed.is_set()


def faust_app(settings: Settings) -> SignalsApp:
    datadir: dict[str, Any] = {"datadir": settings.radar_signals_data_dir} if settings.radar_signals_data_dir else {}
    return SignalsApp(
        settings.radar_signals_app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store=settings.radar_signals_store,
        **datadir,
        topic_partitions=settings.radar_partitions,
        topic_replication_factor=settings.radar_replication_factor,
        producer_acks=-1,
        # a flush writes thousands of states at once: fewer, larger produce batches (Faust's default is 16 KiB)
        producer_max_batch_size=512 * 1024,
        # the agent takes batches of thousands of records: the fetches and the stream's buffer keep up with it
        stream_buffer_maxsize=40_000,
        broker_max_poll_records=20_000,
        consumer_max_fetch_size=4 * 1024**2,
        # how soon a dead worker's partitions move to the survivors
        broker_session_timeout=settings.radar_signals_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.radar_signals_session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        web_bind=settings.radar_host,
        web_port=settings.radar_signals_port,
        web_host=settings.radar_host,
        autodiscover=False,
        key_serializer="json",
        value_serializer="json",
    )


def input_topic(app: faust.App, topics: Topics) -> TopicT:
    """Both inputs as raw bytes, acks off: Faust never commits these offsets; the worker commits them after the state
    covering them is written."""
    return app.topic(
        topics.usage_events,
        topics.account_updates,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        acks=False,
    )


def run_worker(app: faust.App, source: TopicT, worker: SignalsWorker, positions: Partitions, tuning: SignalsConfig) -> None:
    """The agent, its timers and its signal handlers, each handing over to the worker."""

    async def close_positions(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await worker.close()
        await positions.close()

    async def forget_states(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await worker.forget()  # partitions revoked

    app.on_before_shutdown.connect(close_positions)
    app.on_partitions_revoked.connect(forget_states)

    @app.agent(source, concurrency=1)
    async def process(stream: StreamT) -> None:
        async for events in cast(BatchedStream, stream).noack_take(tuning.batch_size, within=tuning.batch_wait_seconds):
            await worker.handle(stream, list(events))
            if worker.flush_due(tuning.state_flush_seconds):
                await worker.flush(wait=False)

    @app.timer(tuning.state_flush_seconds)
    async def flush_when_idle() -> None:
        await worker.flush_if_idle(tuning.state_flush_seconds)

    @app.timer(STALL_CHECK_SECONDS)
    async def resume_stalled_partitions() -> None:
        if recovery_done(app) and not app.rebalancing:
            await worker.resume_stalled(STALL_CHECK_SECONDS)
