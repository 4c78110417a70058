"""CloudEvents 1.0 (structured and batch modes) into Kafka, built with the CloudEvents SDK as a producer would."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from tests.helpers import TopicReader

CONFIG = """
ingest:
  cloudevents:
    types:
      com.example.api.called: {type: usage, set: {metric: api_calls}, from: {quantity: data.count}}
"""


def cloud_event(event_id: str, event_type: str, data: dict, subject: str | None = "acme") -> CloudEvent:
    attributes = {"id": event_id, "source": "/billing", "type": event_type, "time": datetime(2026, 11, 10, 12, tzinfo=UTC)}
    if subject is not None:
        attributes["subject"] = subject
    return CloudEvent(attributes, data)


async def test_structured_and_batch_cloudevents_reach_kafka_and_replays_are_duplicates(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap, tmp_path
) -> None:
    config = tmp_path / "radar.yaml"
    config.write_text(CONFIG)
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack, RADAR_CONFIG=str(config))
    auth = {"Authorization": f"Bearer {key}"}
    structured = to_structured(cloud_event("1", "io.expansionradar.usage", {"metric": "api_calls", "quantity": 5}), JSONFormat())
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=auth) as http:
        one = await http.post("/v1/cloudevents", headers=structured.headers, content=structured.body)
        assert (one.status_code, one.json()) == (202, {"accepted": 1, "duplicates": 0, "ignored": 0})
        batch = [
            orjson.loads(JSONFormat().write(cloud_event("2", "com.example.api.called", {"count": 7}))),
            orjson.loads(JSONFormat().write(cloud_event("3", "io.expansionradar.nps", {"score": 9}, subject="globex"))),
            orjson.loads(structured.body),  # replay of event 1
        ]
        many = await http.post(
            "/v1/cloudevents", headers={"content-type": "application/cloudevents-batch+json"}, content=orjson.dumps(batch)
        )
        assert (many.status_code, many.json()) == (202, {"accepted": 2, "duplicates": 1, "ignored": 0})

        bad = await http.post(
            "/v1/cloudevents",
            headers={"content-type": "application/cloudevents-batch+json"},
            content=orjson.dumps(
                [
                    {**batch[0], "id": "4", "subject": None},
                    {**batch[0], "id": "5", "type": "com.example.unknown"},
                    {"specversion": "1.0", "id": "6", "type": "io.expansionradar.usage", "subject": "acme"},
                    {**batch[1], "id": "7", "data": {"score": 11}},
                ]
            ),
        )
        assert bad.status_code == 400
        assert [(e["index"], e["field"]) for e in bad.json()["errors"]] == [(0, "subject"), (1, "type"), (2, "source"), (3, "data.score")]
        json_mode = await http.post("/v1/cloudevents", json=batch[0])
        assert json_mode.status_code == 415 and "application/cloudevents+json" in json_mode.json()["message"]

    async with TopicReader(kafka_bootstrap, stack.topics.usage_events) as reader:
        await reader.wait_events(3, 30, "CloudEvents on usage-events")
        await reader.drain_for(1)
    values = sorted(reader.events(), key=lambda v: v["id"])
    assert [(v["id"], v["type"], v["account_id"]) for v in values] == [
        ("/billing#1", "usage", "acme"),
        ("/billing#2", "usage", "acme"),
        ("/billing#3", "nps", "globex"),
    ]
    assert values[1]["metric"] == "api_calls" and values[1]["quantity"] == 7 and values[0]["timestamp"] == "2026-11-10T12:00:00Z"
