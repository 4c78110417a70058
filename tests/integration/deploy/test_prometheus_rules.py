"""The alert rules and the Prometheus config pass promtool, and every rule has a unit test that fires it."""

from __future__ import annotations

import yaml

from tests.fixtures.ops import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
REQUIRED_ALERTS = {
    "RadarIngestErrorRate",
    "RadarConsumerLagGrowing",
    "RadarDeadLetterQueueNotEmpty",
    "RadarDeliveryFailures",
    "RadarNoEventsAccepted",
    "RadarEndToEndLatencyHigh",
    "RadarSignalsRecoveryStalled",
}


def test_rules_pass_promtool_check(ops_tools) -> None:
    result = ops_tools.run("promtool", "check", "rules", PROMETHEUS / "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_rule_is_unit_tested_and_the_tests_pass(ops_tools) -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    assert REQUIRED_ALERTS <= alerts
    tests = yaml.safe_load((PROMETHEUS / "rules.test.yml").read_text())
    fired = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts == fired, f"alerts never shown firing in rules.test.yml: {sorted(alerts - fired)}"

    result = ops_tools.run("promtool", "test", "rules", PROMETHEUS / "rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_compose_prometheus_config_passes_promtool_with_the_rules(ops_tools) -> None:
    result = ops_tools.run("promtool", "check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
