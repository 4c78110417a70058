"""kill -9 of the notifier at random points under load: nothing is lost, keyed receivers see each key's
effect once, and Slack (no idempotency key) repeats at most the one message in flight per kill."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter

from tests.helpers import produce, wait_for
from tests.integration.notifier.test_delivery import alert, records

CRASHY = """
notifier:
  backoff_base_seconds: 0.2
  backoff_cap_seconds: 1.0
  claim_seconds: 1.0
  slack:
    seconds_per_message: 0.01
"""
ACCOUNTS = ("acme", "beta", "gamma", "delta")
PER_ACCOUNT = 8
KILLS = 4


async def test_kill_minus_nine_under_load_loses_nothing_and_repeats_only_unkeyed_in_flight_sends(
    stack_factory,
    database_url,
    service_factory,
    slack_factory,
    webhook_factory,
    hubspot_factory,
    salesforce_factory,
    kafka_bootstrap,
    tmp_path,
) -> None:
    seed = int(time.time())
    print(f"kill schedule seed: {seed}")
    chance = random.Random(seed)
    slack, hook, hubspot, salesforce = slack_factory(), webhook_factory(), hubspot_factory(), salesforce_factory()
    for receiver in (hook, hubspot, salesforce):
        receiver.delay_s = 0.03  # slow answers widen the window between a send and its record
    (tmp_path / "radar.yaml").write_text(CRASHY)
    stack = stack_factory(
        database_url,
        SLACK_WEBHOOK_URL=slack.url,
        WEBHOOK_URL=hook.url,
        WEBHOOK_SECRET=hook.secret,
        WEBHOOK_ALLOW_PRIVATE="1",
        HUBSPOT_ACCESS_TOKEN=hubspot.token,
        HUBSPOT_BASE_URL=hubspot.url,
        SALESFORCE_ACCESS_TOKEN=salesforce.token,
        SALESFORCE_INSTANCE_URL=salesforce.url,
        RADAR_CONFIG=str(tmp_path / "radar.yaml"),
    )
    sent = [alert(account, n) for n in range(1, PER_ACCOUNT + 1) for account in ACCOUNTS]
    await produce(kafka_bootstrap, stack.topics.expansion_alerts, records(*sent))

    def sends() -> int:
        return slack.attempts + hook.attempts + hubspot.attempts + salesforce.attempts

    for _ in range(KILLS):
        notifier = service_factory("notifier", stack)
        target = sends() + chance.randint(3, 25)
        wait_for(lambda target=target: sends() >= target, 60, f"{target} sends before the kill")
        notifier.stop(signal.SIGKILL)
    service_factory("notifier", stack)

    total = len(sent)
    hook.wait_for_keys(total, timeout=120)
    hubspot.wait_for_objects("tasks", total, timeout=120)
    salesforce.wait_for_objects("Task", total, timeout=120)
    slack.wait_for_messages(total, timeout=120)

    def keys(channel: str) -> set[str]:
        return {f"{a.alert_id}:{channel}" for a in sent}

    assert {r["id"] for r in hook.received} == keys("webhook")
    assert {t["properties"]["radar_alert_key"] for t in hubspot.created("tasks")} == keys("hubspot")
    assert set(salesforce.objects["Task"]) == keys("salesforce")
    # a key sent again after a kill is recognised: one object per key, whatever the repeats
    assert len(hubspot.created("tasks")) == len(salesforce.objects["Task"]) == len(hook.received) == total
    keyed_repeats = sum(n - 1 for receiver in (hook, hubspot, salesforce) for n in receiver.seen.values())
    slack_counts = Counter(m["blocks"][3]["block_id"] for m in slack.messages)
    slack_repeats = sum(n - 1 for n in slack_counts.values())
    print(f"repeats after {KILLS} kills: keyed {keyed_repeats}, slack {slack_repeats}")
    assert set(slack_counts) == {f"alert:{a.alert_id}" for a in sent}
    # one delivery is in flight at a time per process: each kill can leave at most one send unrecorded
    assert keyed_repeats + slack_repeats <= KILLS
    for account in ACCOUNTS:
        expected = [a.alert_id for a in sent if a.account_id == account]
        assert [r["data"]["alert_id"] for r in hook.received if r["data"]["account_id"] == account] == expected
        first_slack = list(dict.fromkeys(m["blocks"][3]["block_id"] for m in slack.messages))
        assert [b.removeprefix("alert:") for b in first_slack if b.startswith(f"alert:alert:{account}:")] == expected
