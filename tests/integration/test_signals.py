"""The signals worker (Faust) against real Kafka: thresholds once, duplicates dropped, state recovered."""

from __future__ import annotations

import signal as signals_module

import orjson

from tests.helpers import TopicReader, produce

T = "2026-11-10T12:00:00Z"


def account_update(limit: float = 100) -> tuple[bytes, bytes]:
    body = {"account_id": "acme", "name": "Acme", "domains": ["acme.com"], "limits": {"api_calls": limit}, "updated_at": T}
    return b"acme", orjson.dumps(body)


def usage(event_id: str, quantity: float) -> tuple[bytes, bytes]:
    return b"acme", orjson.dumps(
        {"id": event_id, "type": "usage", "account_id": "acme", "timestamp": T, "metric": "api_calls", "quantity": quantity}
    )


def user(event_id: str, email: str) -> tuple[bytes, bytes]:
    return b"acme", orjson.dumps(
        {"id": event_id, "type": "user_added", "account_id": "acme", "timestamp": T, "user": {"id": email, "email": email}}
    )


def summary(records: list) -> list[tuple]:
    out = []
    for record in records:
        signal = orjson.loads(record.value)
        out.append((signal["type"], signal.get("threshold") or signal.get("domain")))
    return out


async def test_thresholds_fire_once_and_a_replayed_event_is_not_counted(stack_factory, service_factory, kafka_bootstrap) -> None:
    stack = stack_factory()
    service_factory("signals", stack)
    topics = stack.topics
    await produce(kafka_bootstrap, topics.account_updates, [account_update(100)])
    async with TopicReader(kafka_bootstrap, topics.expansion_signals) as reader:
        await produce(
            kafka_bootstrap,
            topics.usage_events,
            [usage("e1", 50), usage("e2", 35), user("u1", "ann@acme.com"), user("u2", "bob@gmail.com")],
        )
        await reader.wait_count(2, 60, "signals for 85 % and ann@acme.com")
        # e2 again would take usage to 120 % and fire 95 %: it must be dropped, so e3 fires 90 %
        await produce(kafka_bootstrap, topics.usage_events, [usage("e2", 35), usage("e3", 6)])
        await reader.wait_count(3, 60, "the 90 % signal")
        await reader.drain_for(1.5)
    assert summary(reader.records) == [
        ("usage_threshold_crossed", 0.8),
        ("new_domain_user", "acme.com"),
        ("usage_threshold_crossed", 0.9),
    ]
    first = orjson.loads(reader.records[0].value)
    assert (first["value"], first["limit"], first["utilization"], first["event_id"]) == (85, 100, 0.85, "e2")
    assert {r.key for r in reader.records} == {b"acme"}


async def test_a_killed_worker_recovers_its_state_and_does_not_repeat_signals(stack_factory, service_factory, kafka_bootstrap) -> None:
    stack = stack_factory()
    worker = service_factory("signals", stack)
    topics = stack.topics
    await produce(kafka_bootstrap, topics.account_updates, [account_update(100)])
    async with TopicReader(kafka_bootstrap, topics.expansion_signals) as reader:
        await produce(kafka_bootstrap, topics.usage_events, [usage("e1", 82)])
        await reader.wait_count(1, 60, "the 80 % signal")
        worker.stop(signals_module.SIGKILL)
        service_factory("signals", stack)
        # 82 + 9 = 91 %: only possible with the recovered 82; a fresh state would stay silent
        await produce(kafka_bootstrap, topics.usage_events, [usage("e4", 9)])
        await reader.wait_count(2, 90, "the 90 % signal after the restart")
        await reader.drain_for(1.5)
    signal_ids = [orjson.loads(r.value)["signal_id"] for r in reader.records]
    thresholds = [orjson.loads(r.value)["threshold"] for r in reader.records]
    # a crash before commit may replay e1, but its signal id is the same and never a new crossing
    assert sorted(set(thresholds)) == [0.8, 0.9]
    assert len(set(signal_ids)) == 2
