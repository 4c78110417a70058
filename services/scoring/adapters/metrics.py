"""Scoring's Prometheus metrics, declared once."""

from prometheus_client import Counter

RECORDS = Counter("radar_scoring_records", "Records consumed, by kind and outcome", ["kind", "outcome"])
SCORE_UPDATES = Counter("radar_scoring_score_updates", "Scores recomputed, by resulting tier", ["tier"])
ALERTS = Counter("radar_scoring_alerts", "Alerts decided per new signal: expansion, retention_risk, or below_tier (not raised)", ["kind"])
