"""The Grafana dashboard covers the four services and the end-to-end latency, and is provisioned.
(That every query is valid PromQL is checked against a real Prometheus in test_prometheus_scrape.py.)"""

from __future__ import annotations

import json

from tests.fixtures.ops import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "expansion-radar.json"


def panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def test_dashboard_has_a_row_per_service_and_queries_each_services_metrics() -> None:
    rows = [panel["title"] for panel in panels() if panel["type"] == "row"]
    assert rows == ["Pipeline at a glance", "Ingest", "Signals", "Scoring", "Notifier"]
    exprs = " ".join(target["expr"] for panel in panels() for target in panel.get("targets", []))
    for prefix in ("radar_ingest_", "radar_signals_", "radar_scoring_", "radar_notifier_"):
        assert prefix in exprs, prefix
    end_to_end = [p for p in panels() if "radar_end_to_end_seconds_bucket" in json.dumps(p.get("targets", []))]
    assert any(p["fieldConfig"]["defaults"]["unit"] == "s" and "p99" in json.dumps(p["targets"]) for p in end_to_end)


def test_panels_are_well_formed_and_do_not_overlap() -> None:
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(grid["y"] + dy, grid["x"] + dx) for dy in range(grid["h"]) for dx in range(grid["w"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
