"""Scoring against real Kafka and PostgreSQL: scores stored, alerts with drivers, money and owner published,
redelivery harmless, unhealthy accounts gated, and the read API answering from what was stored."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import func, select

from services.scoring.adapters.tables import (
    Account,
    AlertRecord,
    Opportunity,
    OpportunityStageChange,
    Plan,
    Score,
    ScoreHistory,
    SignalRecord,
)
from shared.db import create_engine
from shared.event_records import group_events
from tests.helpers import TopicReader, await_for, produce

T = "2026-11-10T12:00:00Z"


def signal(signal_id: str, utilization: float, account_id: str = "acme", limit: float = 1000) -> tuple[bytes, bytes]:
    body = {
        "signal_id": signal_id,
        "type": "usage_threshold_crossed",
        "account_id": account_id,
        "metric": "api_calls",
        "value": utilization * limit,
        "limit": limit,
        "utilization": utilization,
        "threshold": 0.8,
        "period": "2026-11-01",
        "event_id": f"e-{signal_id}",
        "event_timestamp": T,
        "emitted_at": T,
    }
    return account_id.encode(), orjson.dumps(body)


def new_user(signal_id: str, account_id: str) -> tuple[bytes, bytes]:
    body = {
        "signal_id": signal_id,
        "type": "new_domain_user",
        "account_id": account_id,
        "user": {"id": "u1", "email": "ann@dull.example"},
        "domain": "dull.example",
        "event_id": f"e-{signal_id}",
        "event_timestamp": T,
        "emitted_at": T,
    }
    return account_id.encode(), orjson.dumps(body)


def account(account_id: str, name: str, **fields: Any) -> tuple[bytes, bytes]:
    body = {"account_id": account_id, "name": name, "limits": {"api_calls": 1000}, "updated_at": T, **fields}
    return account_id.encode(), orjson.dumps(body)


def plan(plan_id: str, price: float, next_plan: str | None = None) -> tuple[bytes, bytes]:
    body = {"plan_id": plan_id, "limits": {"api_calls": 1000, "seats": 10}, "price": price, "next_plan": next_plan, "updated_at": T}
    return plan_id.encode(), orjson.dumps(body)


def event(event_id: str, account_id: str, kind: str, **fields: Any) -> tuple[bytes, bytes]:
    return account_id.encode(), orjson.dumps({"id": event_id, "account_id": account_id, "timestamp": T, "type": kind, **fields})


def neighbour(account_id: str, partitions: int) -> str:
    """Another account on the same partition: its signal, produced after, is processed after (a marker)."""
    everything = list(range(partitions))
    partition_of = DefaultPartitioner()
    home = partition_of(account_id.encode(), everything, everything)
    return next(
        candidate
        for candidate in (f"{account_id}-marker-{i}" for i in range(1000))
        if partition_of(candidate.encode(), everything, everything) == home
    )


class Database:
    def __init__(self, url: str) -> None:
        self.url = url

    async def scalar(self, statement: Any) -> Any:
        engine = create_engine(self.url)
        try:
            async with engine.connect() as connection:
                return await connection.scalar(statement)
        finally:
            await engine.dispose()

    async def count(self, model: Any, *where: Any) -> int:
        return await self.scalar(select(func.count()).select_from(model).where(*where))

    async def wait_rows(self, model: Any, count: int, *where: Any, what: str) -> None:
        async def enough() -> bool:
            return await self.count(model, *where) >= count

        await await_for(enough, 60, what, interval=0.25)


async def test_a_signal_becomes_a_stored_score_and_an_alert_with_drivers_money_and_owner(
    stack_factory, database_url, service_factory, kafka_bootstrap, api_key_factory
) -> None:
    stack = stack_factory(database_url)
    service_factory("scoring", stack)
    topics = stack.topics
    db = Database(database_url)
    beta = neighbour("acme", stack.settings.radar_partitions)
    owners = {"csm": "dana@vendor.example", "ae": "sam@vendor.example", "slack_channel": "#acme"}
    await produce(kafka_bootstrap, topics.plan_updates, [plan("starter", 12_000, "growth"), plan("growth", 30_000)])
    await produce(kafka_bootstrap, topics.account_updates, [account("acme", "Acme Corp", plan="starter", arr=50_000, owners=owners)])
    await db.wait_rows(Plan, 2, what="the plan catalog stored")
    await db.wait_rows(Account, 1, what="the account stored")

    async with TopicReader(kafka_bootstrap, topics.expansion_alerts) as reader:
        await produce(kafka_bootstrap, topics.expansion_signals, [signal("s-96", 0.96)])
        (record,) = await reader.wait_count(1, 60, "an alert")
        first = orjson.loads(record.value)
        stored_at = await db.scalar(select(Score.updated_at).where(Score.account_id == "acme"))
        # the same signal again (a redelivery), then a marker signal for another account
        await produce(kafka_bootstrap, topics.expansion_signals, [signal("s-96", 0.96), signal("s-beta", 0.85, beta)])

        async def marker_seen() -> bool:
            return any(orjson.loads(r.value)["alert_id"] == "alert:s-beta" for r in await reader.poll())

        await await_for(marker_seen, 60, "the marker alert")

    # adoption 96 % → usage 30/30; ARR at the segment average (3) and 1 plan above (3) → potential 6/10: 36 of 40 → 90
    assert (first["kind"], first["score"], first["tier"]) == ("expansion", 90, "immediate")
    assert [d["factor"] for d in first["drivers"]] == ["product_usage", "expansion_potential"]
    assert first["changes"] == ["first score for this account"]
    # starter → growth is +18,000 on 50,000 ARR = 36 % ≥ 20 %: the AE owns it, the CSM is informed
    assert (first["expansion_arr"], first["arr"], first["motion"]) == (18_000, 50_000, "upsell")
    assert (first["route_to"], first["owner"], first["informed"]) == ("ae", "sam@vendor.example", ["dana@vendor.example"])
    assert (first["health"], first["slack_channel"]) == (None, "#acme")

    alerts = [orjson.loads(r.value) for r in reader.records]
    assert {a["alert_id"] for a in alerts} == {"alert:s-96", "alert:s-beta"}
    assert all(a == first for a in alerts if a["alert_id"] == "alert:s-96")
    assert await db.count(AlertRecord) == 2
    assert await db.count(SignalRecord) == 2
    assert await db.count(ScoreHistory, ScoreHistory.account_id == "acme") == 1
    assert await db.scalar(select(Score.updated_at).where(Score.account_id == "acme")) == stored_at

    # the read API serves what was stored
    headers = {"Authorization": f"Bearer {api_key_factory(database_url)}"}
    async with httpx.AsyncClient(base_url=stack.url("scoring"), headers=headers, timeout=10) as client:
        ranked = (await client.get("/v1/accounts", params={"order": "score", "limit": 10})).json()
        # beta is known by usage alone (100 on the 30 known points); acme's 90 includes its ACV
        assert [(item["account_id"], item["score"]) for item in ranked["items"]] == [(beta, 100), ("acme", 90)]
        assert (ranked["total"], ranked["next_offset"]) == (2, None)
        mine = (await client.get("/v1/accounts", params={"owner": "sam@vendor.example", "tier": "immediate"})).json()
        assert [(item["account_id"], item["expansion_arr"]) for item in mine["items"]] == [("acme", 18_000)]
        page = (await client.get("/v1/accounts", params={"limit": 1})).json()
        assert (len(page["items"]), page["next_offset"]) == (1, 1)
        detail = (await client.get("/v1/accounts/acme")).json()
        assert (detail["score"], detail["tier"], detail["plan"], detail["limits"]) == (90, "immediate", "starter", {"api_calls": 1000})
        assert detail["usage"] == [{"metric": "api_calls", "value": 960, "limit": 1000, "utilization": 0.96}]
        assert [a["alert_id"] for a in detail["open_alerts"]] == ["alert:s-96"]
        assert [s["signal_id"] for s in detail["signals"]] == ["s-96"]
        assert {f["factor"] for f in detail["breakdown"]["factors"]} >= {"product_usage", "satisfaction"}
        history = (await client.get("/v1/accounts/acme/score-history")).json()
        assert [(h["score"], h["signal_id"]) for h in history["items"]] == [(90, "s-96")]
        assert (await client.get("/v1/accounts/nobody")).status_code == 404
        assert (await client.get("/v1/accounts", headers={"Authorization": "Bearer wrong"})).status_code == 401


async def test_an_unhealthy_account_gets_a_retention_alert_and_no_expansion_alert(
    stack_factory, database_url, service_factory, kafka_bootstrap
) -> None:
    stack = stack_factory(database_url)
    scoring = service_factory("scoring", stack)
    topics = stack.topics
    db = Database(database_url)
    owners = {"csm": "dana@vendor.example", "ae": "sam@vendor.example"}
    await produce(kafka_bootstrap, topics.account_updates, [account("frail", "Frail Inc", arr=80_000, owners=owners)])
    await db.wait_rows(Account, 1, what="the account stored")
    # health travels on usage-events among ordinary usage, in a record grouped as ingest writes it (an array);
    # the NPS event is delivered twice, the second time alone in a record of one event (an object)
    detractor = event("nps-1", "frail", "nps", score=3)
    noise = event("u-1", "frail", "usage", metric="api_calls", quantity=5)
    (grouped,) = group_events([("frail", noise[1]), ("frail", detractor[1])], stack.settings.radar_partitions)
    await produce(kafka_bootstrap, topics.usage_events, [(grouped.key or b"frail", grouped.value), detractor])
    await db.wait_rows(Score, 1, Score.account_id == "frail", Score.health.is_not(None), what="the health score stored")

    async with TopicReader(kafka_bootstrap, topics.expansion_alerts) as reader:
        # dull: a new user is all scoring knows of it: nothing scored, Low, below the actionable tier
        dull = neighbour("frail", stack.settings.radar_partitions)
        marker = signal("s-marker", 0.85, neighbour(dull, stack.settings.radar_partitions))
        await produce(kafka_bootstrap, topics.expansion_signals, [signal("s-frail", 0.97, "frail"), new_user("s-dull", dull), marker])

        async def marker_seen() -> bool:
            return any(orjson.loads(r.value)["alert_id"] == "alert:s-marker" for r in await reader.poll())

        await await_for(marker_seen, 60, "the marker alert")

    frail = [orjson.loads(r.value) for r in reader.records if orjson.loads(r.value)["account_id"] == "frail"]
    assert [a["kind"] for a in frail] == ["retention_risk"]
    (alert,) = frail
    # NPS 3 → satisfaction 0.3, usage trend 1.0 (a crossing this month): (0.3 × 40 + 20) / 60 = 53.3
    assert (alert["health"], alert["route_to"], alert["owner"], alert["expansion_arr"]) == (53.3, "csm", "dana@vendor.example", None)
    assert "below 70" in alert["reason"]
    # the replayed NPS event was recognised: one health rescore, one signal rescore
    assert await db.count(ScoreHistory, ScoreHistory.account_id == "frail") == 2
    assert not [r for r in reader.records if orjson.loads(r.value)["account_id"] == dull]
    assert await db.scalar(select(Score.tier).where(Score.account_id == dull)) == "low"
    assert scoring.process.poll() is None


async def test_unreadable_records_are_skipped_not_fatal(stack_factory, database_url, service_factory, kafka_bootstrap) -> None:
    stack = stack_factory(database_url)
    scoring = service_factory("scoring", stack)
    topics = stack.topics
    async with TopicReader(kafka_bootstrap, topics.expansion_alerts) as reader:
        await produce(kafka_bootstrap, topics.usage_events, [(b"acme", b'{"type":"nps","id":1}'), (b"acme", b'[{"type":"nps"}, 7]')])
        await produce(
            kafka_bootstrap, topics.expansion_signals, [(b"acme", b"{not json"), (b"acme", b'{"signal_id": 1}'), signal("s-ok", 0.9)]
        )
        (record,) = await reader.wait_count(1, 60, "the alert after the bad records")
    assert orjson.loads(record.value)["alert_id"] == "alert:s-ok"
    assert scoring.process.poll() is None
    assert "skipping unreadable record" in scoring.log()


def alert_action(action_id: str, account_id: str, action: str, origin: str, reason: str | None = None) -> tuple[bytes, bytes]:
    body = {
        "action_id": action_id,
        "alert_id": f"alert:s-{account_id}",
        "account_id": account_id,
        "action": action,
        "reason": reason,
        "actor": "dana@vendor.example",
        "origin": origin,
        "at": T,
    }
    return account_id.encode(), orjson.dumps(body)


async def test_alert_actions_from_either_origin_move_the_opportunity_and_a_repeat_or_a_snooze_changes_nothing(
    stack_factory, database_url, service_factory, kafka_bootstrap
) -> None:
    stack = stack_factory(database_url)
    service_factory("scoring", stack)
    db = Database(database_url)
    await produce(kafka_bootstrap, stack.topics.expansion_signals, [signal("s-globex", 0.96, account_id="globex")])
    await db.wait_rows(Opportunity, 1, Opportunity.account_id == "globex", what="the alert's opportunity")
    done = alert_action("a2", "globex", "done", "notifier")
    snoozed, dismissed = alert_action("a1", "globex", "snoozed", "console"), alert_action("a3", "globex", "dismissed", "console", "not now")
    actions = [snoozed, done, done, dismissed]
    await produce(kafka_bootstrap, stack.topics.alert_actions, actions)  # one account: one partition, read in order

    async def lost() -> bool:
        return await db.scalar(select(Opportunity.stage).where(Opportunity.account_id == "globex")) == "lost"

    await await_for(lost, 60, "the dismissal to lose the opportunity", interval=0.25)
    opportunity_id = await db.scalar(select(Opportunity.opportunity_id).where(Opportunity.account_id == "globex"))
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            moves = (
                await connection.execute(
                    select(OpportunityStageChange.to_stage, OpportunityStageChange.reason)
                    .where(OpportunityStageChange.opportunity_id == opportunity_id)
                    .order_by(OpportunityStageChange.id)
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(move) for move in moves] == [
        ("identified", "alert alert:s-globex"),
        ("qualified", "owner reached out"),
        ("lost", "alert dismissed: not now"),
    ]
