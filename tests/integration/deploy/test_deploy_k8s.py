"""deploy/k8s validates with kubeconform (strict) against the Kubernetes schemas, and has what the issue
asks of it: probes, resource requests, secrets referenced not inlined, a StatefulSet for signals with a
stable group instance id per pod, an HPA for ingest."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.config import parse_config
from shared.settings import Settings
from tests.fixtures.ops import KUBERNETES_VERSION, ROOT

K8S = ROOT / "deploy" / "k8s"
PORTS = {"ingest": 8080, "scoring": 8081, "notifier": 8082, "signals": 8083}


def kubeconform(ops_tools, schemas: str, *paths: Path):
    return ops_tools.run(
        "kubeconform",
        "-strict",
        "-summary",
        "-kubernetes-version",
        KUBERNETES_VERSION,
        "-schema-location",
        schemas,
        "-skip",
        "Kustomization",
        *paths,
    )


def manifests() -> list[dict]:
    documents = [document for path in sorted(K8S.glob("*.yaml")) for document in yaml.safe_load_all(path.read_text()) if document]
    return [document for document in documents if document["kind"] != "Kustomization"]


def find(kind: str, name: str) -> dict:
    return next(m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name)


def test_manifests_pass_kubeconform_strict(ops_tools, kubernetes_schemas) -> None:
    result = kubeconform(ops_tools, kubernetes_schemas, K8S)
    assert result.returncode == 0, result.stdout + result.stderr
    valid = len(manifests())
    assert f"Valid: {valid}, Invalid: 0, Errors: 0" in result.stdout, result.stdout


def test_kubeconform_refuses_invalid_manifests(ops_tools, kubernetes_schemas, tmp_path: Path) -> None:
    text = (K8S / "ingest.yaml").read_text()
    broken = {
        "unknown-field": text.replace("readinessProbe:", "readinesProbe:"),
        "wrong-type": text.replace("replicas: 2", "replicas: two"),
        "missing-required": text.replace("          image: expansion-radar:0.1.0\n", "").replace("- name: ingest\n", "- image: x\n", 1),
    }
    for name, content in broken.items():
        assert content != text, name
        (tmp_path / f"{name}.yaml").write_text(content)
        result = kubeconform(ops_tools, kubernetes_schemas, tmp_path / f"{name}.yaml")
        assert result.returncode == 1 and "Invalid: 1" in result.stdout, f"{name}: {result.stdout}"


def test_every_workload_has_probes_requests_and_secrets_by_reference() -> None:
    workloads = {m["metadata"]["name"]: m for m in manifests() if m["kind"] in ("Deployment", "StatefulSet")}
    assert {name: m["kind"] for name, m in workloads.items()} == {
        "ingest": "Deployment",
        "scoring": "Deployment",
        "notifier": "Deployment",
        "signals": "StatefulSet",
    }
    for name, workload in workloads.items():
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["serve", name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["ports"][0]["containerPort"] == PORTS[name]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
        env = {item["name"]: item for item in container.get("env", [])}
        assert env[f"RADAR_{name.upper()}_PORT"]["value"] == str(PORTS[name])
        for item in env.values():  # secrets only by reference
            if item["name"] in ("DATABASE_URL", "SLACK_WEBHOOK_URL"):
                assert "value" not in item and item["valueFrom"]["secretKeyRef"]["name"] == "radar-secrets"
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert mounts["/etc/radar"] == "config"
    assert not [m for m in manifests() if m["kind"] == "Secret"], "secrets are created out of band, never kept here"


def test_signals_workers_have_a_stable_group_instance_id_per_pod() -> None:
    signals = find("StatefulSet", "signals")
    assert signals["spec"]["serviceName"] == "signals-workers"
    assert find("Service", "signals-workers")["spec"]["clusterIP"] == "None"
    (container,) = signals["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["RADAR_CONSUMER_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_signals_workers_keep_their_state_in_rocksdb_on_a_volume_of_their_own() -> None:
    signals = find("StatefulSet", "signals")
    (container,) = signals["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    Settings(radar_signals_store=env["RADAR_SIGNALS_STORE"])  # a store the worker accepts
    assert env["RADAR_SIGNALS_STORE"] == "rocksdb://"
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    (claim,) = signals["spec"]["volumeClaimTemplates"]
    assert mounts[env["RADAR_SIGNALS_DATA_DIR"]] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert signals["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001  # writable by the worker's user


def test_ingest_autoscales_and_the_config_map_is_valid_radar_config() -> None:
    hpa = find("HorizontalPodAutoscaler", "ingest")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ingest"}
    assert 1 < hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    config = find("ConfigMap", "radar-config")["data"]["radar.yaml"]
    parse_config(yaml.safe_load(config), source="deploy/k8s/configmap.yaml")
    environment = find("ConfigMap", "radar-env")["data"]
    assert environment["RADAR_CONFIG"] == "/etc/radar/radar.yaml" and environment["RADAR_LOG_FORMAT"] == "json"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(path.name for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
