"""Scoring's Prometheus metrics, declared once."""

from prometheus_client import Counter

RECORDS = Counter("radar_scoring_records", "Records consumed, by kind and outcome", ["kind", "outcome"])
SCORE_UPDATES = Counter("radar_scoring_score_updates", "Scores recomputed, by resulting tier", ["tier"])
