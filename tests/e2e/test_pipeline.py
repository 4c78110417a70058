"""One account's events travel ingest → Kafka → signals → scoring → notifier → Slack, every service a real process."""

from __future__ import annotations

import httpx

from tests.helpers import await_for

T = "2026-11-10T12:00:00Z"


def usage(event_id: str, quantity: float) -> dict:
    return {"id": event_id, "type": "usage", "account_id": "acme", "timestamp": T, "metric": "api_calls", "quantity": quantity}


EVENTS = [
    usage("e1", 4_000),
    usage("e2", 4_200),  # 82 % -> usage_threshold_crossed at 80 %
    {
        "id": "u1",
        "type": "user_added",
        "account_id": "acme",
        "timestamp": T,
        "user": {"id": "ann", "email": "ann@eu.acme.com", "team": "data"},
    },  # first user from the customer's domain
    {
        "id": "u2",
        "type": "user_added",
        "account_id": "acme",
        "timestamp": T,
        "user": {"id": "bob", "email": "bob@gmail.com"},
    },  # personal mail never counts
    usage("e3", 1_500),  # 97 % -> one signal, for 95 % (90 % is passed over in the same event)
]


async def test_events_become_exactly_three_slack_messages_and_replays_add_none(
    stack_factory, database_url, service_factory, slack_factory, api_key_factory
) -> None:
    slack = slack_factory()
    stack = stack_factory(database_url, SLACK_WEBHOOK_URL=slack.url)
    key = api_key_factory(database_url)
    for name in ("notifier", "scoring", "signals", "ingest"):
        service_factory(name, stack)

    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        account = {
            "name": "Acme Corp",
            "domains": ["acme.com"],
            "plan": "growth",
            "limits": {"api_calls": 10_000},
            "arr": 48_000,
            "owners": {"csm": "dana@vendor.example", "ae": "lee@vendor.example"},
        }
        assert (await client.put("/v1/accounts/acme", json=account)).status_code == 200

        async def limits_known() -> bool:
            state = await client.get(stack.url("signals", "/v1/state/acme"))
            return state.status_code == 200 and state.json()["limits"] == {"api_calls": 10_000}

        # the account and its events travel on different topics: let the limits land first
        await await_for(limits_known, 60, "the signals worker to know acme's limits")
        first = await client.post("/v1/events", json={"events": EVENTS})
        assert (first.status_code, first.json()) == (202, {"accepted": 5, "duplicates": 0})

        messages = slack.wait_for_messages(3, timeout=90)
        texts = sorted(m["text"] for m in messages)
        assert len(texts) == 3
        assert all("Acme Corp" in t and "Score" in t and "/100" in t for t in texts)
        usage_texts = [t for t in texts if "crossed" in t]
        assert any("crossed 80%" in t and "8200 / 10000" in t for t in usage_texts)
        assert any("crossed 95%" in t and "9700 / 10000" in t for t in usage_texts)
        user_text = next(t for t in texts if "new user" in t)
        assert "ann@eu.acme.com" in user_text and "10000" in user_text  # usage vs limit is on every alert

        replay = await client.post("/v1/events", json={"events": EVENTS})
        assert (replay.status_code, replay.json()) == (202, {"accepted": 0, "duplicates": 5})
        # a new domain after the replay: once its message is in, the replay has been through the whole pipeline
        marker = {"id": "u3", "type": "user_added", "account_id": "acme", "timestamp": T, "user": {"id": "cy", "email": "cy@acme.com"}}
        assert (await client.post("/v1/events", json={"events": [marker]})).json() == {"accepted": 1, "duplicates": 0}
        slack.wait_for_messages(4, timeout=90)
    assert len(slack.messages) == 4
    assert "cy@acme.com" in slack.messages[-1]["text"]
    assert slack.attempts == 4
