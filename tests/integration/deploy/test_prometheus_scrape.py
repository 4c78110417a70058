"""Debian's Prometheus scrapes the four running services: a known number of posted events shows up in the
ingest and signals metrics, delivered alerts in the end-to-end histogram; every /metrics passes
`promtool check metrics`; the alert rules load and every dashboard query runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from tests.fixtures.ops import ROOT, wait_for_value
from tests.helpers import await_for, wait_for

T = "2026-11-10T12:00:00Z"
SERVICES = ("ingest", "signals", "scoring", "notifier")


def usage(event_id: str, quantity: float) -> dict:
    return {"id": event_id, "type": "usage", "account_id": "acme", "timestamp": T, "metric": "api_calls", "quantity": quantity}


# 6 events: 4 usage (82 % crosses 80 %, 97 % crosses 95 %), 2 below any threshold on a second metric
EVENTS = [
    usage("e1", 4_000),
    usage("e2", 4_200),
    usage("e3", 1_500),
    usage("e4", 100),
    {**usage("s1", 1), "metric": "storage_gb"},
    {**usage("s2", 1), "metric": "storage_gb"},
]
EXPECTED_SIGNALS = 2  # usage_threshold_crossed at 80 % and at 95 %
DUPLICATES = 2


async def test_prometheus_sees_the_posted_events_across_ingest_signals_and_notifier(
    stack_factory, database_url, service_factory, slack_factory, api_key_factory, prometheus_factory, ops_tools
) -> None:
    slack = slack_factory()
    stack = stack_factory(database_url, SLACK_WEBHOOK_URL=slack.url)
    key = api_key_factory(database_url)
    for name in ("notifier", "scoring", "signals", "ingest"):
        service_factory(name, stack)
    prometheus = prometheus_factory({f"radar-{name}": [stack.url(name).removeprefix("http://")] for name in SERVICES})
    prometheus.wait_all_up()
    assert len(prometheus.targets()) == len(SERVICES)

    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        account = {
            "name": "Acme Corp",
            "domains": ["acme.com"],
            "plan": "growth",
            "limits": {"api_calls": 10_000, "storage_gb": 1_000},
            "arr": 48_000,
            "owners": {"csm": "dana@vendor.example"},
        }
        assert (await client.put("/v1/accounts/acme", json=account)).status_code == 200

        async def limits_known() -> bool:
            state = await client.get(stack.url("signals", "/v1/state/acme"))
            return state.status_code == 200 and state.json()["limits"].get("api_calls") == 10_000

        await await_for(limits_known, 60, "the signals worker to know acme's limits")
        for event in EVENTS:  # one request each: the request counter must count them too
            response = await client.post("/v1/events", json={"events": [event]})
            assert (response.status_code, response.json()) == (202, {"accepted": 1, "duplicates": 0})
        replay = await client.post("/v1/events", json={"events": EVENTS[:DUPLICATES]})
        assert replay.json() == {"accepted": 0, "duplicates": DUPLICATES}
    slack.wait_for_messages(EXPECTED_SIGNALS, timeout=90)

    # ingest: accepted and duplicate events, requests by route and status, latency observations
    wait_for_value(prometheus, 'sum(radar_ingest_events_total{job="radar-ingest", outcome="accepted"})', len(EVENTS))
    wait_for_value(prometheus, 'sum(radar_ingest_events_total{job="radar-ingest", outcome="duplicate"})', DUPLICATES)
    wait_for_value(prometheus, 'sum(radar_ingest_requests_total{job="radar-ingest", route="/v1/events", status="202"})', len(EVENTS) + 1)
    wait_for_value(prometheus, 'sum(radar_ingest_request_duration_seconds_count{route="/v1/events"})', len(EVENTS) + 1)
    # signals: every accepted event and the account update processed once (duplicates never reached Kafka)
    wait_for_value(prometheus, 'sum(radar_signals_records_total{job="radar-signals", outcome="processed"})', len(EVENTS) + 1)
    assert prometheus.value('sum(radar_signals_records_total{job="radar-signals", outcome="rejected"})') == 0
    wait_for_value(prometheus, 'sum(radar_signals_emitted_total{job="radar-signals", type="usage_threshold_crossed"})', EXPECTED_SIGNALS)
    # the whole way: each delivered alert observed once in the end-to-end histogram, event time -> delivery
    delivered = len(slack.messages)
    wait_for_value(prometheus, 'sum(radar_notifier_deliveries_total{job="radar-notifier", outcome="sent"})', delivered)

    # scoring and notifier report their consumer lag per partition they own; all caught up once delivered
    for job in ("radar-scoring", "radar-notifier"):
        series = f'count(radar_consumer_lag{{job="{job}"}})'
        wait_for(lambda series=series: prometheus.value(series), 30, f"{job} to report its consumer lag")
        wait_for_value(prometheus, f'sum(radar_consumer_lag{{job="{job}"}})', 0)

    # the alert rules load and evaluate without errors against the real series
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 6 and all(rule["health"] == "ok" for rule in rules), rules

    # every dashboard query is valid PromQL that this Prometheus runs
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "expansion-radar.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs
    for expr in exprs:
        prometheus.query(expr.replace("$__rate_interval", "1m"))

    # each service's exposition passes promtool's lint
    for name in SERVICES:
        exposition = httpx.get(stack.url(name, "/metrics"), timeout=10).text
        assert "radar_" in exposition
        result = ops_tools.run("promtool", "check", "metrics", stdin=exposition, timeout=30)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"

    # the whole way: each delivered alert observed once in the end-to-end histogram (event time -> delivered),
    # which the notifier records with shared.observability.observe_end_to_end after a delivery is marked sent
    try:
        wait_for_value(prometheus, 'sum(radar_end_to_end_seconds_count{job="radar-notifier"})', delivered, timeout=30)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: the notifier must call shared.observability.observe_end_to_end(alert.signal.event_timestamp) once per delivered alert"
        ) from None
    assert prometheus.value('sum(radar_end_to_end_seconds_bucket{job="radar-notifier", le="+Inf"})') == delivered
    # the events are stamped 2026-11-10 12:00, so each took at least the time since then
    event_age = (datetime.now(UTC) - datetime(2026, 11, 10, 12, tzinfo=UTC)).total_seconds()
    assert prometheus.value('sum(radar_end_to_end_seconds_sum{job="radar-notifier"})') >= delivered * event_age - 60
