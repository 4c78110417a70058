"""The signals worker (Faust) against real Kafka: thresholds once, duplicates dropped, state recovered."""

from __future__ import annotations

import asyncio
import re
import signal as signals_module
import tempfile
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.signals.domain.state import AccountState, encode_state
from shared.event_records import partition_of
from shared.kafka import ensure_topics
from shared.topics import TopicSpec
from tests.helpers import TopicReader, await_for, produce

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
    metrics = httpx.get(stack.url("signals", "/metrics"), timeout=5)
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'radar_signals_emitted_total{type="usage_threshold_crossed"} 2.0' in metrics.text
    assert summary(reader.records) == [
        ("usage_threshold_crossed", 0.8),
        ("new_domain_user", "acme.com"),
        ("usage_threshold_crossed", 0.9),
    ]
    first = orjson.loads(reader.records[0].value)
    assert (first["value"], first["limit"], first["utilization"], first["event_id"]) == (85, 100, 0.85, "e2")
    assert {r.key for r in reader.records} == {b"acme"}


# memory: a restart reads every state back from the changelog; rocksdb (production): from its own disk, then
# the changelog written since (the worker runs in the test's directory, so its data directory outlives it)
STORES = pytest.mark.parametrize("store", ["memory://", "rocksdb://"])


@STORES
async def test_a_killed_worker_recovers_its_state_and_does_not_repeat_signals(
    stack_factory, service_factory, kafka_bootstrap, store
) -> None:
    stack = stack_factory(RADAR_SIGNALS_STORE=store)
    worker = service_factory("signals", stack)
    topics = stack.topics
    await produce(kafka_bootstrap, topics.account_updates, [account_update(100)])
    async with TopicReader(kafka_bootstrap, topics.expansion_signals) as reader:
        await produce(kafka_bootstrap, topics.usage_events, [usage("e1", 82)])
        await reader.wait_count(1, 60, "the 80 % signal")
        await await_for(lambda: asyncio.to_thread(lambda: _used(stack, "acme") == 82), 60, "the state holding e1 written")
        worker.stop(signals_module.SIGKILL)
        service_factory("signals", stack)
        # the state holding e1 was in the changelog before the kill: at ready, it is there, read back from it (or the disk)
        recovered = httpx.get(stack.url("signals", "/v1/state/acme"), timeout=5)
        assert recovered.status_code == 200, recovered.text
        assert recovered.json()["usage"]["api_calls"]["used"] == 82
        # 82 + 9 = 91 %: only possible with the recovered 82; a fresh state would stay silent
        await produce(kafka_bootstrap, topics.usage_events, [usage("e4", 9)])
        await reader.wait_count(2, 90, "the 90 % signal after the restart")
        await reader.drain_for(1.5)
    signal_ids = [orjson.loads(r.value)["signal_id"] for r in reader.records]
    thresholds = [orjson.loads(r.value)["threshold"] for r in reader.records]
    # a crash before commit may replay e1, but its signal id is the same and never a new crossing
    assert sorted(set(thresholds)) == [0.8, 0.9]
    assert len(set(signal_ids)) == 2


@pytest.mark.timeout(600)
@STORES
async def test_killed_mid_stream_the_written_state_covers_every_committed_event(
    stack_factory, service_factory, kafka_bootstrap, store
) -> None:
    """kill -9 while thousands of events are in flight (state writes coalesced, offsets committed behind
    them), restart, and the recovered usage is exactly the sum of everything produced: no event whose
    offset was committed is missing from the state, and none is counted twice."""
    stack = stack_factory(RADAR_SIGNALS_STORE=store)
    worker = service_factory("signals", stack, RADAR_CONFIG=str(_fast_flush_config(stack)))
    topics = stack.topics
    accounts = [f"acc{index}" for index in range(6)]
    await produce(kafka_bootstrap, topics.account_updates, [(a.encode(), orjson.dumps(_update(a, 10**9))) for a in accounts])
    per_account, group = 3000, 50
    records = [
        (a.encode(), orjson.dumps([_usage_body(a, f"{a}-{start + i}", 1) for i in range(group)]))
        for start in range(0, per_account, group)
        for a in accounts
    ]
    # the first half streams in while the worker runs; the second only after the kill, so the kill always lands
    # mid-stream, with events read but not yet written or committed
    first_half, second_half = records[: len(records) // 2], records[len(records) // 2 :]
    producing = asyncio.create_task(produce(kafka_bootstrap, topics.usage_events, first_half))

    def processed() -> float:
        try:
            text = httpx.get(stack.url("signals", "/metrics"), timeout=2).text
        except httpx.HTTPError:
            return 0.0
        return sum(float(v) for v in re.findall(r'^radar_signals_records_total\{kind="\w+",outcome="processed"\} ([0-9.e+]+)$', text, re.M))

    await await_for(lambda: asyncio.to_thread(lambda: processed() > len(accounts) * per_account / 4), 120, "a quarter processed")
    worker.stop(signals_module.SIGKILL)
    await producing
    await produce(kafka_bootstrap, topics.usage_events, second_half)
    service_factory("signals", stack, RADAR_CONFIG=str(_fast_flush_config(stack)))

    # every account's usage reaches exactly the total produced, and stays there (no double counting)
    try:
        await await_for(lambda: asyncio.to_thread(lambda: all(_used(stack, a) == per_account for a in accounts)), 180, "exact totals")
    except AssertionError as exc:
        recovered = {a: _used(stack, a) for a in accounts}
        raise AssertionError(f"{exc}: recovered usage {recovered}, expected {per_account} each") from None
    assert {a: _used(stack, a) for a in accounts} == dict.fromkeys(accounts, float(per_account))


def _used(stack, account_id: str) -> float | None:
    """The account's usage of api_calls in the state endpoint; None while it has no state or none for the metric."""
    response = httpx.get(stack.url("signals", f"/v1/state/{account_id}"), timeout=5)
    return response.json()["usage"].get("api_calls", {}).get("used") if response.status_code == 200 else None


def _fast_flush_config(stack) -> Path:
    """A flush every 0.2 s, so a kill lands between many coalesced writes and their commits."""
    path = Path(tempfile.gettempdir()) / f"radar-{stack.env['RADAR_TOPIC_PREFIX']}yaml"
    path.write_text("signals:\n  state_flush_seconds: 0.2\n  batch_size: 500\n")
    return path


def _update(account_id: str, limit: float) -> dict:
    return {"account_id": account_id, "name": account_id, "limits": {"api_calls": limit}, "updated_at": T}


def _usage_body(account_id: str, event_id: str, quantity: float) -> dict:
    return {"id": event_id, "type": "usage", "account_id": account_id, "timestamp": T, "metric": "api_calls", "quantity": quantity}


async def test_a_changelog_ending_in_a_transaction_marker_does_not_hold_recovery_for_ever(
    stack_factory, service_factory, kafka_bootstrap
) -> None:
    """Faust's recovery waits until it has read up to the changelog's last offset, and a transactional producer's
    commit marker takes an offset no consumer is ever given (faust-streaming #47): without the recovery watch the
    worker never becomes ready. The state written before the marker is recovered and used."""
    stack = stack_factory(RADAR_SIGNALS_RECOVERY_STALL_S="2")
    changelog = f"{stack.env['RADAR_SIGNALS_APP_ID']}-account-state-changelog"
    partitions = stack.settings.radar_partitions
    await ensure_topics(stack.settings, [TopicSpec(changelog, partitions, 1, {"cleanup.policy": "compact"})])
    transactional = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{changelog}-writer")
    await transactional.start()
    try:
        async with transactional.transaction():
            state = encode_state(AccountState(account_id="acme", limits={"api_calls": 100}))
            await transactional.send_and_wait(changelog, state, key=b'"acme"', partition=partition_of("acme", partitions))
    finally:
        await transactional.stop()
    worker = service_factory("signals", stack, ready_timeout=60)
    recovered = httpx.get(stack.url("signals", "/v1/state/acme"), timeout=5)
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["limits"] == {"api_calls": 100}
    assert "the log holds no record there (transaction markers): recovered" in worker.log()
    metrics = httpx.get(stack.url("signals", "/metrics"), timeout=5).text
    assert 'radar_signals_recovery_stalls_total{action="no_records_left"} 1.0' in metrics
    async with TopicReader(kafka_bootstrap, stack.topics.expansion_signals) as reader:
        # no account update was sent: the limit the 80 % crossing is measured against is the recovered one
        await produce(kafka_bootstrap, stack.topics.usage_events, [usage("e1", 85)])
        await reader.wait_count(1, 60, "the 80 % signal against the recovered limit")
    assert summary(reader.records) == [("usage_threshold_crossed", 0.8)]
    assert httpx.get(stack.url("signals", "/healthz"), timeout=5).status_code == 200
