"""HubSpot and Salesforce stand-ins behind the one channel interface: tasks (and deals / Opportunities)
created once per alert through rate limits, 5xx bursts and slow answers; a bad token goes to the DLQ."""

from __future__ import annotations

import json

from tests.helpers import TopicReader, produce, wait_for
from tests.integration.notifier.test_delivery import alert, records

DEALS = """
notifier:
  backoff_base_seconds: 0.2
  backoff_cap_seconds: 1.0
  crm_create_deals: true
"""


async def test_crm_tasks_and_deals_are_created_once_through_failures(
    stack_factory, database_url, service_factory, hubspot_factory, salesforce_factory, kafka_bootstrap, tmp_path
) -> None:
    hubspot, salesforce = hubspot_factory(), salesforce_factory()
    hubspot.companies["acme"] = "9001"
    hubspot.owners["dana"] = "77"
    hubspot.fail_next(2, status=429, retry_after=1)
    hubspot.fail_next(2, status=502, retry_after=None)
    salesforce.request_limit(1)
    salesforce.fail_next(2, status=503, retry_after=None)
    salesforce.delay_s = hubspot.delay_s = 0.2
    (tmp_path / "radar.yaml").write_text(DEALS)
    stack = stack_factory(
        database_url,
        HUBSPOT_ACCESS_TOKEN=hubspot.token,
        HUBSPOT_BASE_URL=hubspot.url,
        SALESFORCE_ACCESS_TOKEN=salesforce.token,
        SALESFORCE_INSTANCE_URL=salesforce.url,
        RADAR_CONFIG=str(tmp_path / "radar.yaml"),
    )
    notifier = service_factory("notifier", stack)
    sent = [alert("acme", n).model_copy(update={"expansion_arr": 12000.0 * n}) for n in range(1, 4)]
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(*sent, sent[0]))
    tasks = hubspot.wait_for_objects("tasks", 3)
    deals = hubspot.wait_for_objects("deals", 3)
    sf_tasks = salesforce.wait_for_objects("Task", 3)
    opportunities = salesforce.wait_for_objects("Opportunity", 3)

    assert [t["properties"]["radar_alert_key"] for t in tasks] == [f"{a.alert_id}:hubspot" for a in sent]  # in order
    assert all(t["properties"]["hubspot_owner_id"] == "77" for t in tasks)
    assert all(t["associations"][0]["to"]["id"] == "9001" for t in tasks + deals)
    assert [t["associations"][0]["types"][0]["associationTypeId"] for t in tasks] == [192] * 3
    assert sorted(float(d["properties"]["amount"]) for d in deals) == [12000.0, 24000.0, 36000.0]
    assert all(t["What"] == {"attributes": {"type": "Account"}, "Radar_Account_Id__c": "acme"} for t in sf_tasks)
    assert all(o["StageName"] == "Prospecting" for o in opportunities)
    assert max(hubspot.seen.values()) == 1 and max(salesforce.seen.values()) == 1  # no key came twice
    assert hubspot.token not in notifier.log() and salesforce.token not in notifier.log()


async def test_a_rejected_crm_token_goes_to_the_dlq_without_leaking_it(
    stack_factory, database_url, service_factory, salesforce_factory, kafka_bootstrap
) -> None:
    salesforce = salesforce_factory()
    stack = stack_factory(database_url, SALESFORCE_ACCESS_TOKEN="expired-token-value", SALESFORCE_INSTANCE_URL=salesforce.url)
    notifier = service_factory("notifier", stack)
    async with TopicReader(kafka_bootstrap, stack.topics.notifications_dlq) as dlq:
        await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(alert("acme", 1)))
        letters = await dlq.wait_count(1, 60, "dead letters")
    letter = json.loads(letters[0].value)
    assert letter["channel"] == "salesforce" and "401" in letter["error"] and "INVALID_SESSION_ID" in letter["error"]
    assert "expired-token-value" not in notifier.log() and "expired-token-value" not in letters[0].value.decode()
    wait_for(lambda: salesforce.attempts == 1, 10, "exactly one attempt: a 401 is not retried")
