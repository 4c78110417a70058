"""The shared ops helpers: the end-to-end histogram and the trace id every request's log lines carry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from shared.observability import DemoteRetriedKafkaErrors, observe_end_to_end, trace_id_from


def observed(suffix: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"radar_end_to_end_seconds_{suffix}", labels) or 0.0


def test_end_to_end_latency_is_delivery_time_minus_event_time() -> None:
    count, total = observed("count"), observed("sum")
    under_half_second = observed("bucket", le="0.5")
    event_time = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    assert observe_end_to_end(event_time, event_time + timedelta(milliseconds=300)) == 0.3
    assert observed("count") == count + 1
    assert abs(observed("sum") - total - 0.3) < 1e-9
    assert observed("bucket", le="0.5") == under_half_second + 1


def test_naive_event_times_are_utc_and_clocks_ahead_count_as_zero() -> None:
    delivered = datetime(2026, 11, 10, 12, 0, 2, tzinfo=UTC)
    assert observe_end_to_end(datetime(2026, 11, 10, 12, 0), delivered) == 2.0
    assert observe_end_to_end(delivered + timedelta(seconds=5), delivered) == 0.0


def test_trace_id_comes_from_traceparent_then_request_id_else_is_new() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id_from({"traceparent": traceparent, "x-request-id": "r1"}) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_from({"traceparent": "nonsense", "x-request-id": "req-42"}) == "req-42"
    fresh = trace_id_from({"x-request-id": "bad\nid"})
    assert len(fresh) == 32 and fresh != trace_id_from({})
    assert len(trace_id_from({"x-request-id": "x" * 500})) == 32


def test_with_a_multiprocess_dir_metrics_add_up_across_worker_processes(tmp_path) -> None:
    """Several processes behind one port (PROMETHEUS_MULTIPROC_DIR): /metrics shows their sum."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = "from prometheus_client import Counter; Counter('radar_unit_mp', 'test', ['k']).labels('a').inc({n})"
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", worker.format(n=n)], env=env, check=True, timeout=60)
    reader = "from shared.observability import metrics_exposition; print(metrics_exposition().decode())"
    exposition = subprocess.run([sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True, text=True).stdout
    assert 'radar_unit_mp_total{k="a"} 5.0' in exposition


def test_errors_aiokafka_retries_itself_are_logged_as_warnings_and_others_stay_errors() -> None:
    def level(logger: str, message: str) -> str:
        record = logging.LogRecord(logger, logging.ERROR, __file__, 1, message, None, None)
        assert DemoteRetriedKafkaErrors().filter(record) is True, "nothing is dropped"
        return record.levelname

    assert level(
        "aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
    ) == ("WARNING")
    assert level("aiokafka.consumer.group_coordinator", "Unexpected error in heartbeat routine") == "ERROR"
    assert level("services.notifier", "GroupCoordinatorNotAvailableError mentioned by us") == "ERROR"
