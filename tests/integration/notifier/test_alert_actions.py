"""Alert actions over Kafka: the console's reach the notifier's outbox through alert-actions (applied once, an
unknown alert skipped), and the notifier's own (actions API, Slack buttons) are published there for scoring."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from services.notifier.adapters.tables import OpenTopic, Outreach
from shared.db import AccountAttention, ClosedAlert, OutboxAlert, create_engine, sessionmaker
from shared.schemas import AlertAction
from tests.helpers import TopicReader, await_for, produce
from tests.integration.notifier.test_delivery import alert, records, slack_request


def console_action(alert_id: str, action: str, **fields: object) -> AlertAction:
    values: dict[str, object] = {
        "action_id": uuid.uuid4().hex,
        "alert_id": alert_id,
        "account_id": "acme",
        "action": action,
        "actor": "alice",
        "origin": "console",
        "at": datetime.now(UTC),
    }
    return AlertAction.model_validate({**values, **fields})


def action_records(*actions: AlertAction) -> list[tuple[bytes, bytes]]:
    return [(a.account_id.encode(), a.model_dump_json().encode()) for a in actions]


async def test_a_console_action_is_applied_to_the_outbox_once_and_an_unknown_alert_is_skipped(
    stack_factory, database_url, service_factory, kafka_bootstrap, tmp_path
) -> None:
    stack = stack_factory(database_url, RADAR_ALERT_LOG=str(tmp_path / "alerts.ndjson"))
    notifier = service_factory("notifier", stack)
    first, second = alert("acme", 1), alert("acme", 2)
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(first, second))
    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    try:

        async def stored() -> bool:
            async with sessions() as session:
                return await session.scalar(select(func.count()).select_from(OutboxAlert)) == 2

        await await_for(stored, 60, "both alerts in the outbox")

        done = console_action(first.alert_id, "done")
        until = datetime.now(UTC) + timedelta(days=3)
        # one account's actions share a partition, so the snooze last proves every earlier one was handled
        actions = [
            done,
            done,  # a repeat of the same action
            console_action("alert:acme:nope", "dismissed", reason="never stored"),
            console_action(second.alert_id, "dismissed", reason="the notifier's own", origin="notifier"),
            console_action(second.alert_id, "snoozed", snoozed_until=until, reason="snoozed in the console by alice"),
        ]
        await produce(kafka_bootstrap, stack.topics.alert_actions, action_records(*actions))

        async def snoozed() -> AccountAttention | None:
            async with sessions() as session:
                state = await session.get(AccountAttention, "acme")
                return state if state is not None and state.snoozed_until is not None else None

        state = await await_for(snoozed, 60, "the console's snooze in the outbox")
        assert state.snoozed_until == until and state.reason == "snoozed in the console by alice"
        async with sessions() as session:
            closed = (await session.scalars(select(ClosedAlert))).all()
            outreaches = (await session.scalars(select(Outreach))).all()
            open_topics = (await session.scalars(select(OpenTopic.alert_id))).all()
        assert [(c.alert_id, c.status, c.actor) for c in closed] == [(first.alert_id, "done", "alice")]
        assert [(o.alert_id, o.actor) for o in outreaches] == [(first.alert_id, "alice")], "applied twice, logged once"
        assert first.alert_id not in open_topics and second.alert_id in open_topics
        assert "alert action on an unknown alert skipped" in notifier.log()
        assert httpx.get(stack.url("notifier", "/readyz"), timeout=5).status_code == 200
    finally:
        await engine.dispose()


async def test_the_actions_api_and_slack_buttons_publish_alert_actions(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap, tmp_path
) -> None:
    signing_secret = "8f742231b10e8888abcd99yyyzzz85a5"
    stack = stack_factory(database_url, RADAR_ALERT_LOG=str(tmp_path / "alerts.ndjson"), RADAR_SLACK_SIGNING_SECRET=signing_secret)
    service_factory("notifier", stack)
    key = api_key_factory(database_url, "dana")
    api = httpx.Client(base_url=stack.url("notifier"), headers={"Authorization": f"Bearer {key}"}, timeout=10)
    first, second, third = alert("acme", 1), alert("acme", 2), alert("acme", 3)
    async with TopicReader(kafka_bootstrap, stack.topics.alert_actions) as reader:
        await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(first, second, third))

        async def known() -> bool:
            return api.post(f"/v1/alerts/{third.alert_id}/dismiss", json={"reason": "no budget"}).status_code == 200

        await await_for(known, 60, "the third alert to reach the notifier")
        done = api.post(f"/v1/alerts/{first.alert_id}/done")
        assert done.status_code == 200
        assert done.json() == {"alert_id": first.alert_id, "account_id": "acme", "status": "done"}
        until = datetime.now(UTC) + timedelta(days=2)
        snoozed = api.post(f"/v1/alerts/{second.alert_id}/snooze", json={"until": until.isoformat(), "reason": "at a conference"})
        assert snoozed.json() == {"account_id": "acme", "snoozed_until": until.isoformat()}
        clicked = [{"action_id": "done", "value": first.alert_id}]
        button = {"type": "block_actions", "user": {"id": "U1", "username": "dana"}, "actions": clicked}
        body, headers = slack_request(signing_secret, button)
        assert api.post("/slack/interactions", content=body, headers=headers).status_code == 200
        assert api.post("/v1/alerts/nope/done").status_code == 404

        received = await reader.wait_count(4, 60, "alert actions")
    actions = [AlertAction.model_validate_json(r.value) for r in received]
    assert all(r.key == b"acme" for r in received)
    assert [(a.alert_id, a.action, a.actor, a.reason) for a in actions] == [
        (third.alert_id, "dismissed", "dana", "no budget"),
        (first.alert_id, "done", "dana", None),
        (second.alert_id, "snoozed", "dana", "at a conference"),
        (first.alert_id, "done", "slack:dana", None),
    ]
    assert {a.origin for a in actions} == {"notifier"} and len({a.action_id for a in actions}) == 4
    assert actions[2].snoozed_until == until
