"""deploy/: no Docker engine here, so the compose file and Kubernetes manifests are checked for structure,
cross-references and settings that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from konvrt.config import Settings

DEPLOY = Path(__file__).parents[1] / "deploy"
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def _settings_named(env: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    names = env.keys() if isinstance(env, dict) else [e["name"] for e in env]
    return [
        n for n in names if n.startswith("KONVRT_") and n.removeprefix("KONVRT_").lower() not in Settings.model_fields
    ]


def _manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def test_kubernetes_manifests_are_well_formed_and_consistent() -> None:
    docs = _manifests()
    assert {d["kind"] for d in docs} >= {"Deployment", "StatefulSet", "Service", "ConfigMap", "Secret"}
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], doc
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    secret_keys = {k for d in docs if d["kind"] == "Secret" for k in d["stringData"]}
    config_keys = {k for d in docs if d["kind"] == "ConfigMap" for k in d["data"]}
    assert _settings_named({k: "" for k in secret_keys | config_keys}) == []
    pod_labels = []
    for doc in (d for d in docs if d["kind"] in WORKLOADS):
        template = doc["spec"]["template"]
        if doc["kind"] != "Job":
            assert doc["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
            pod_labels.append(template["metadata"]["labels"])
        for container in template["spec"]["containers"]:
            assert container["name"] and container["image"]
            assert _settings_named(container.get("env", [])) == []
            for ref in container.get("envFrom", []):
                kind, name = (
                    ("ConfigMap", ref["configMapRef"]["name"])
                    if "configMapRef" in ref
                    else ("Secret", ref["secretRef"]["name"])
                )
                assert (kind, name) in by_kind
            for env in container.get("env", []):
                if "valueFrom" in env:
                    assert env["valueFrom"]["secretKeyRef"]["key"] in secret_keys
    for service in (d for d in docs if d["kind"] == "Service"):
        assert any(service["spec"]["selector"].items() <= labels.items() for labels in pod_labels), service


def test_roles_run_the_commands_that_exist() -> None:
    from konvrt.cli import app

    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    assert {"serve", "worker"} <= commands
    docs = {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == "Deployment"}
    assert docs["konvrt-api"]["spec"]["template"]["spec"]["containers"][0]["command"][:2] == ["konvrt", "serve"]
    assert "--no-workers" in docs["konvrt-api"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert docs["konvrt-worker"]["spec"]["template"]["spec"]["containers"][0]["command"] == ["konvrt", "worker"]
    groups = {g.name for g in app.registered_groups}
    assert "db" in groups
    for name in ("konvrt-api", "konvrt-worker"):  # the schema is upgraded before a pod's main container starts
        deployment = docs[name]
        assert deployment["spec"]["template"]["spec"]["initContainers"][0]["command"] == ["konvrt", "db", "upgrade"]


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"api", "worker", "postgres", "redis", "minio"} <= services.keys()
    volumes = set(compose.get("volumes", {}))
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert set(service.get("depends_on", {})) <= services.keys(), name
        assert _settings_named(service.get("environment", {})) == [], name
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in volumes, (name, volume)
    assert services["worker"]["command"] == ["konvrt", "worker"]
    assert services["migrate"]["command"] == ["konvrt", "db", "upgrade"]
    for role in ("api", "worker"):
        assert services[role]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert (DEPLOY / "Dockerfile").read_text().startswith("#")
