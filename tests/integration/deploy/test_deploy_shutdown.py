"""What an orchestrator relies on: every service stops cleanly on SIGTERM (exit 0, in-flight work done) and
writes one JSON object per log line naming the service; HTTP requests carry a trace id into the logs."""

from __future__ import annotations

import json
import signal

import httpx

from tests.helpers import TopicReader

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
# the last words of a clean stop: uvicorn ran the lifespan shutdown (producers flushed, consumers committed
# and closed); Faust's worker stopped its agents, committed and closed its loop
CLEAN_STOP = {
    "ingest": "Application shutdown complete.",
    "scoring": "Application shutdown complete.",
    "notifier": "Application shutdown complete.",
    "signals": "[^Worker]: Closing event loop",
}
# uvicorn re-raises the SIGTERM it handled once shutdown is done, so the exit reads as "terminated by SIGTERM"
# (143 to an orchestrator), which is what Kubernetes and Docker expect of a graceful stop
GRACEFUL_EXIT = (0, -signal.SIGTERM)


def json_lines(log: str) -> list[dict]:
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines, "the service logged nothing"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
    return parsed


async def test_every_service_logs_json_and_exits_cleanly_on_sigterm(
    stack_factory, database_url, service_factory, api_key_factory, kafka_bootstrap
) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    services = {name: service_factory(name, stack) for name in ("notifier", "scoring", "signals", "ingest")}

    event = {"id": "e1", "type": "usage", "account_id": "acme", "timestamp": "2026-11-10T12:00:00Z", "metric": "api_calls", "quantity": 1}
    headers = {"Authorization": f"Bearer {key}", "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=headers, timeout=30) as client:
        response = await client.post("/v1/events", json={"events": [event]})
        assert response.status_code == 202
        assert response.headers["X-Trace-Id"] == TRACE_ID
        # no trace context sent: a fresh id is made and returned
        untraced = await client.get("/healthz", headers={"traceparent": "garbage"})
        assert len(untraced.headers["X-Trace-Id"]) == 32 and untraced.headers["X-Trace-Id"] != TRACE_ID

    # ingest answered 202 only after Kafka acknowledged: stopping it right away loses nothing
    assert services["ingest"].stop(signal.SIGTERM, timeout=30) in GRACEFUL_EXIT
    async with TopicReader(kafka_bootstrap, stack.topics.usage_events) as reader:
        (accepted,) = await reader.wait_events(1, 30, "the accepted event on usage-events")
    assert accepted["id"] == "e1"

    for name, service in services.items():
        code = service.stop(signal.SIGTERM, timeout=60)
        log = service.log()
        assert code in GRACEFUL_EXIT, f"{name} exited with {code} on SIGTERM:\n{log[-3000:]}"
        lines = json_lines(log)
        assert all(line.get("service") == name and "timestamp" in line and "level" in line for line in lines), name
        assert lines[-1]["event"] == CLEAN_STOP[name] or any(line["event"] == CLEAN_STOP[name] for line in lines[-5:]), log[-2000:]
        assert not [line for line in lines if line["level"] in ("error", "critical")], name
