"""The worker's counters on /metrics."""

from __future__ import annotations

from prometheus_client import Counter

RECORDS = Counter(
    "radar_signals_records",
    "Events and account updates processed (their signals handed to the producer), replayed, rejected or held back",
    ["kind", "outcome"],
)
SIGNALS = Counter("radar_signals_emitted", "Signals emitted (delivered to Kafka), by type", ["type"])
STATE_WRITES = Counter("radar_signals_state_writes", "Account states written to the table (and its changelog)")
