"""Scoring against real Kafka and PostgreSQL: scores stored, alerts published, redelivery harmless."""

from __future__ import annotations

import asyncio

import orjson
from sqlalchemy import func, select

from shared.db import AlertRecord, Score, ScoreHistory, create_engine
from tests.helpers import TopicReader, produce

T = "2026-11-10T12:00:00Z"


def signal(signal_id: str, utilization: float) -> tuple[bytes, bytes]:
    body = {
        "signal_id": signal_id,
        "type": "usage_threshold_crossed",
        "account_id": "acme",
        "metric": "api_calls",
        "value": utilization * 1000,
        "limit": 1000,
        "utilization": utilization,
        "threshold": 0.8,
        "period": "2026-11-01",
        "event_id": "e1",
        "event_timestamp": T,
        "emitted_at": T,
    }
    return b"acme", orjson.dumps(body)


async def counts(database_url: str) -> tuple[int, int, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            alerts = await connection.scalar(select(func.count()).select_from(AlertRecord))
            history = await connection.scalar(select(func.count()).select_from(ScoreHistory))
            scores = await connection.scalar(select(func.count()).select_from(Score))
        return alerts, history, scores
    finally:
        await engine.dispose()


async def test_a_signal_becomes_a_stored_score_and_one_alert(stack_factory, database_url, service_factory, kafka_bootstrap) -> None:
    stack = stack_factory(database_url)
    service_factory("scoring", stack)
    topics = stack.topics
    account = {
        "account_id": "acme",
        "name": "Acme Corp",
        "domains": ["acme.com"],
        "limits": {"api_calls": 1000},
        "arr": 50000,
        "owners": {"csm": "dana@vendor.example"},
        "updated_at": T,
    }
    await produce(kafka_bootstrap, topics.account_updates, [(b"acme", orjson.dumps(account))])
    async with TopicReader(kafka_bootstrap, topics.expansion_alerts) as reader:
        await produce(kafka_bootstrap, topics.expansion_signals, [signal("s-80", 0.82)])
        (record,) = await reader.wait_count(1, 60, "an alert")
        # the same signal again (a redelivery): re-published at most, never a second alert
        await produce(kafka_bootstrap, topics.expansion_signals, [signal("s-80", 0.82), signal("s-95", 0.96)])
        await reader.wait_count(2, 60, "the 95 % alert")
        await reader.drain_for(1)
    alerts = [orjson.loads(r.value) for r in reader.records]
    assert sorted({a["alert_id"] for a in alerts}) == ["alert:s-80", "alert:s-95"]
    first = orjson.loads(record.value)
    assert (first["account_name"], first["owner"], first["score"], first["tier"]) == ("Acme Corp", "dana@vendor.example", 70, "short_term")
    final = next(a for a in alerts if a["alert_id"] == "alert:s-95")
    assert (final["score"], final["tier"]) == (100, "immediate")

    async def stored() -> tuple[int, int, int]:
        return await counts(database_url)

    assert await asyncio.wait_for(stored(), 10) == (2, 2, 1)


async def test_unreadable_signals_are_skipped_not_fatal(stack_factory, database_url, service_factory, kafka_bootstrap) -> None:
    stack = stack_factory(database_url)
    scoring = service_factory("scoring", stack)
    topics = stack.topics
    async with TopicReader(kafka_bootstrap, topics.expansion_alerts) as reader:
        await produce(
            kafka_bootstrap, topics.expansion_signals, [(b"acme", b"{not json"), (b"acme", b'{"signal_id": 1}'), signal("s-ok", 0.9)]
        )
        (record,) = await reader.wait_count(1, 60, "the alert after two bad records")
    assert orjson.loads(record.value)["alert_id"] == "alert:s-ok"
    assert scoring.process.poll() is None
    assert "skipping unreadable record" in scoring.log()
