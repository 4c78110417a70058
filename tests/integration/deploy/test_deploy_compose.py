"""docker-compose.yml is valid compose (compose-go, Docker Compose's own loader, checks it against the
compose-spec schema; no container engine runs here) and has the production shape the README promises."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.fixtures.ops import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"ingest": 8080, "scoring": 8081, "notifier": 8082, "signals": 8083}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_passes_the_compose_spec_validator(ops_tools) -> None:
    result = ops_tools.run("composecheck", COMPOSE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("valid")


def test_the_validator_refuses_a_broken_compose_file(ops_tools, tmp_path: Path) -> None:
    text = COMPOSE.read_text()
    broken = {
        "misspelled key": text.replace("stop_grace_period: 30s", "stop_grace_perod: 30s"),
        "unknown condition": text.replace("service_completed_successfully", "service_finished"),
        "undefined dependency": text.replace("      - notifier\n", "      - notifer\n"),
    }
    for what, content in broken.items():
        path = tmp_path / f"{what.replace(' ', '-')}.yml"
        path.write_text(content)
        assert content != text, what
        result = ops_tools.run("composecheck", path)
        assert result.returncode == 1, f"{what}: {result.stdout}"


def test_the_services_are_health_checked_and_wait_for_kafka_and_the_migration() -> None:
    services = compose()["services"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, port in SERVICES.items():
        service = services[name]
        assert service["command"] == ["serve", name]
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"]), name
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy", name
        assert service["environment"][f"RADAR_{name.upper()}_PORT"] == str(port)
        assert service["stop_grace_period"] == "30s"
        assert "${POSTGRES_PASSWORD" in service["environment"]["DATABASE_URL"]  # a secret from the environment


def test_the_signals_worker_keeps_its_state_in_rocksdb_on_a_named_volume() -> None:
    document = compose()
    signals = document["services"]["signals"]
    assert signals["environment"]["RADAR_SIGNALS_STORE"] == "rocksdb://"
    volume, path = signals["volumes"][0].split(":")
    assert path == signals["environment"]["RADAR_SIGNALS_DATA_DIR"]
    assert volume in document["volumes"]
    # the image creates the directory for its user, so a fresh named volume there is writable
    assert f"chown 10001 {path}" in (ROOT / "Dockerfile").read_text()


def test_prometheus_scrapes_every_service_with_the_rules_and_grafana_is_provisioned() -> None:
    document = compose()
    services = document["services"]
    prometheus_config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {target for job in prometheus_config["scrape_configs"] for group in job["static_configs"] for target in group["targets"]}
    assert targets == {f"{name}:{port}" for name, port in SERVICES.items()}
    assert prometheus_config["rule_files"] == ["rules.yml"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus"] == "./deploy/prometheus"
    grafana = {volume.split(":")[1]: volume.split(":")[0] for volume in services["grafana"]["volumes"]}
    assert grafana["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert grafana["/var/lib/grafana/dashboards"] == "./deploy/grafana/dashboards"
    # every bind-mounted and config file exists in the repository
    for volumes in (services["prometheus"]["volumes"], services["grafana"]["volumes"]):
        for source in (volume.split(":")[0] for volume in volumes if volume.startswith("./")):
            assert (ROOT / source).exists(), source
    assert (ROOT / document["configs"]["radar-config"]["file"]).is_file()
    datasource = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "radar.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
