"""The outbox against PostgreSQL and SQLite: claiming is exclusive across processes (FOR UPDATE SKIP LOCKED),
an account's deliveries leave in order on each channel, and a redelivered alert changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.adapters.channels.base import RetryableDelivery
from services.notifier.adapters.outbox import Outbox
from services.notifier.domain.config import NotifierConfig, QuietHours
from services.notifier.domain.fatigue import Route
from services.notifier.handlers.delivery import Sender
from shared.db import create_engine, sessionmaker
from shared.schemas import SignalType, Tier
from tests.helpers import await_for
from tests.integration.notifier.test_delivery import alert


async def test_claims_keep_each_accounts_order_and_survive_redelivery(backend_database_url: str) -> None:
    engine = create_engine(backend_database_url)
    try:
        outbox = Outbox(sessionmaker(engine))
        first, second, other = alert("acme", 1), alert("acme", 2), alert("beta", 1)
        for item in (first, second, other):
            assert (await outbox.store(item, ["webhook"])).decision.route == Route.PING
        assert (await outbox.store(first, ["webhook"])).stored is False
        claimed = await outbox.claim(claim_seconds=30)
        # acme's second alert waits behind its first; beta's goes alongside
        assert [d.alert.alert_id for d in claimed] == [first.alert_id, other.alert_id]
        assert await outbox.claim() == [], "claimed deliveries are not handed out again"
        await outbox.mark_retry(claimed[0].delivery_id, 0, "503")
        assert await outbox.mark_sent(claimed[1].delivery_id) is True, "beta's first delivery ends its end-to-end latency"
        assert await outbox.mark_sent(claimed[1].delivery_id) is False, "a delivery is marked sent once"
        again = await outbox.claim()
        assert [d.alert.alert_id for d in again] == [first.alert_id] and again[0].attempts == 1
        assert await outbox.mark_sent(again[0].delivery_id) is True
        assert [d.alert.alert_id for d in await outbox.claim()] == [second.alert_id]
    finally:
        await engine.dispose()


async def test_only_an_alerts_first_delivery_ends_its_end_to_end_latency(backend_database_url: str) -> None:
    engine = create_engine(backend_database_url)
    try:
        outbox = Outbox(sessionmaker(engine))
        await outbox.store(alert("acme", 1), ["webhook", "slack:default"])
        claimed = await outbox.claim()
        assert sorted(d.channel for d in claimed) == ["slack:default", "webhook"]
        assert [await outbox.mark_sent(d.delivery_id) for d in claimed] == [True, False]
    finally:
        await engine.dispose()


async def test_concurrent_claimers_never_share_a_delivery(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        outboxes = [Outbox(sessionmaker(engine)) for engine in engines]
        alerts = [alert(f"acct{n}", 1) for n in range(60)]
        for item in alerts:
            await outboxes[0].store(item, ["webhook", "hubspot"])
        claimed: list[list[int]] = [[] for _ in outboxes]

        async def drain(index: int) -> None:
            while batch := await outboxes[index].claim(limit=5, claim_seconds=60):
                claimed[index] += [d.delivery_id for d in batch]

        await asyncio.gather(*(drain(i) for i in range(len(outboxes))))
        every = [delivery for part in claimed for delivery in part]
        assert len(every) == len(set(every)) == 120
        assert sum(1 for part in claimed if part) > 1, "the work was shared"
    finally:
        for engine in engines:
            await engine.dispose()


class RecordingChannel:
    name = "webhook"
    seconds_per_message = 0.0

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, alert, key: str) -> None:
        self.sent.append(key)


async def test_quiet_hours_defer_deliveries_without_spending_attempts(backend_database_url: str) -> None:
    now = datetime.now(UTC)
    window = QuietHours(start=(now - timedelta(hours=1)).strftime("%H:%M"), end=(now + timedelta(hours=1)).strftime("%H:%M"))
    engine = create_engine(backend_database_url)
    try:
        outbox, channel = Outbox(sessionmaker(engine)), RecordingChannel()
        dead: list[str] = []

        async def dead_letter(due, error: str) -> None:
            dead.append(error)

        sender = Sender(outbox, {"webhook": channel}, NotifierConfig(quiet_hours={"webhook": window}), dead_letter)
        await outbox.store(alert("acme", 1), ["webhook"])
        for due in await outbox.claim():
            await sender.deliver(due)
        assert channel.sent == [] and dead == []
        (delivery,) = await outbox.deliveries()
        assert delivery.status == "pending" and delivery.attempts == 0
        due_at = delivery.next_attempt_at.replace(tzinfo=delivery.next_attempt_at.tzinfo or UTC)
        assert now + timedelta(minutes=55) < due_at <= now + timedelta(hours=1, minutes=1)
        assert await outbox.claim() == [], "not due before the window ends"
    finally:
        await engine.dispose()


async def test_a_digest_goes_out_once_and_a_failed_one_keeps_its_alerts(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        first, second = (Outbox(sessionmaker(engine)) for engine in engines)
        growth = [alert(f"acct{n}", 1, SignalType.USAGE_GROWTH, Tier.LOW) for n in range(3)]
        for item in growth:
            assert (await first.store(item, ["webhook"])).decision.route == Route.DIGEST

        async def broken(alerts: list) -> None:
            raise RuntimeError("slack is down")

        with pytest.raises(RuntimeError):
            await first.digest(broken)
        digests: list[list[str]] = []
        release = asyncio.Event()

        async def slow_send(alerts: list) -> None:
            digests.append([a.alert_id for a in alerts])
            await release.wait()

        racing = asyncio.create_task(first.digest(slow_send))

        async def holding() -> bool:
            return bool(digests)

        await await_for(holding, 10, "the first digest to hold its alerts")
        assert await second.digest(slow_send) == 0, "another process skips the locked alerts"
        release.set()
        assert await racing == 3
        assert digests == [[a.alert_id for a in growth]]
        assert await second.digest(slow_send) == 0
    finally:
        for engine in engines:
            await engine.dispose()


class RateLimitedChannel(RecordingChannel):
    async def send(self, alert, key: str) -> None:
        self.sent.append(key)
        raise RetryableDelivery("webhook answered 429", retry_after_s=30, rate_limited=True)


async def test_a_429_pauses_the_webhooks_queue_without_spending_attempts(backend_database_url: str) -> None:
    engine = create_engine(backend_database_url)
    try:
        outbox, channel = Outbox(sessionmaker(engine)), RateLimitedChannel()
        dead: list[str] = []

        async def dead_letter(due, error: str) -> None:
            dead.append(error)

        sender = Sender(outbox, {"webhook": channel}, NotifierConfig(max_attempts=1), dead_letter)
        await outbox.store(alert("acme", 1), ["webhook"])
        await outbox.store(alert("beta", 1), ["webhook"])
        for due in await outbox.claim():
            await sender.deliver(due)
        assert channel.sent == ["alert:acme:1:webhook"], "the paused queue sends nothing more"
        assert dead == [], "a rate limit is a queue, not a failure: nothing is given up"
        for delivery in await outbox.deliveries():
            due_at = delivery.next_attempt_at.replace(tzinfo=delivery.next_attempt_at.tzinfo or UTC)
            assert delivery.status == "pending" and delivery.attempts == 0
            assert due_at > datetime.now(UTC) + timedelta(seconds=25)
    finally:
        await engine.dispose()
