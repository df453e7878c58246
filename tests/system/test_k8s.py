"""deploy/k8s: `kubectl kustomize` renders it, every object is valid Kubernetes, and it agrees with the app."""

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from flask import Flask

from app import create_app
from app.core.config import SETTINGS
from tests.support.app import ROOT, settings
from tests.support.kustomize import KUBECTL, kustomize
from tests.support.postgres import free_port

K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "example"]
# The oldest Kubernetes minor release the manifests promise to work on.
KUBERNETES_VERSION = "1.31.0"
# Read by gunicorn.conf.py, not by the app.
GUNICORN_SETTINGS = {"WEB_CONCURRENCY", "GUNICORN_BIND"}
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
SECRET_SETTINGS = {"SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "RATELIMIT_STORAGE_URI", "MAIL_PASSWORD"}


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return kustomize(K8S / "overlays" / "example")


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_object_is_valid_kubernetes(folder: Path) -> None:
    for obj in kustomize(folder):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_config_and_secret_hold_every_setting_and_nothing_else(overlay: list[dict[str, Any]]) -> None:
    config = by_kind(overlay, "ConfigMap")[0]["data"]
    secret = by_kind(overlay, "Secret")[0]["stringData"]
    assert set(secret) == SECRET_SETTINGS
    assert set(config) | set(secret) == set(SETTINGS) | GUNICORN_SETTINGS
    assert config["APP_ENV"] == "production"
    assert config["PROXY_HOPS"] == "1"
    assert "*" not in config["FORWARDED_ALLOW_IPS"]  # forwarded headers count from the ingress only


def test_secret_placeholders_cannot_start_the_app(overlay: list[dict[str, Any]]) -> None:
    secret = by_kind(overlay, "Secret")[0]["stringData"]
    assert "change-me" in secret["SECRET_KEY"]
    assert "change-me" in secret["JWT_SECRET_KEY"]


def test_pods_run_locked_down(overlay: list[dict[str, Any]]) -> None:
    templates = [obj["spec"]["template"]["spec"] for obj in overlay if obj["kind"] in ("Deployment", "Job")]
    assert len(templates) == 3  # the API, the mail sender, the migration
    for pod in templates:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert {v["name"]: v for v in pod["volumes"]}["tmp"]["emptyDir"]
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}  # noqa: S108


def test_probes_hit_the_health_endpoints(overlay: list[dict[str, Any]]) -> None:
    container = by_kind(overlay, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    # Liveness needs no free worker (tests/system/test_overload.py runs it while every worker is busy).
    assert container["livenessProbe"]["tcpSocket"]["port"] in {port["name"] for port in container["ports"]}
    urls = create_app({"TESTING": True, "SECRET_KEY": "x" * 64, "JWT_SECRET_KEY": "y" * 64}).url_map.bind("localhost")
    for probe in ("startupProbe", "readinessProbe"):
        urls.match(container[probe]["httpGet"]["path"], method="GET")  # raises NotFound if the route is gone


def test_the_readiness_probe_passes_while_redis_is_down(overlay: list[dict[str, Any]], database_app: Flask) -> None:
    """A Redis outage must not take every pod out of the Service: the app serves on without it (the limits
    fail open), so the probe as rendered, run as kubelet runs it (2xx or 3xx passes), still passes."""
    container = by_kind(overlay, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["port"] in {port["name"] for port in container["ports"]}
    gone = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    url = database_app.config["DATABASE_URL"]
    client = create_app(settings(DATABASE_URL=url, RATELIMIT_STORAGE_URI=gone)).test_client()
    answer = client.get(probe["path"])
    assert 200 <= answer.status_code < 400, answer.get_data()
    assert answer.get_json()["degraded"] == ["redis_unavailable"]


def test_ingress_body_limit_matches_the_app(overlay: list[dict[str, Any]]) -> None:
    ingress = by_kind(overlay, "Ingress")[0]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
    assert by_kind(overlay, "ConfigMap")[0]["data"]["MAX_CONTENT_LENGTH"] == str(1024 * 1024)


def test_migration_job_runs_flask_db_upgrade_with_the_app_image(overlay: list[dict[str, Any]]) -> None:
    job = by_kind(overlay, "Job")[0]["spec"]["template"]["spec"]["containers"][0]
    app = by_kind(overlay, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["flask", "db", "upgrade"]
    assert job["image"] == app["image"] == f"registry.example.com/flask-api-starter:1.0.0@{PLACEHOLDER_DIGEST}"
    assert job["envFrom"] == app["envFrom"]


def test_the_ingress_exposes_the_api_and_docs_but_not_metrics(overlay: list[dict[str, Any]]) -> None:
    paths = [p["path"] for rule in by_kind(overlay, "Ingress")[0]["spec"]["rules"] for p in rule["http"]["paths"]]
    assert "/api/" in paths and "/swagger" in paths
    assert not [p for p in paths if "/metrics".startswith(p) or p.startswith("/metrics")]


def test_deploy_refuses_the_placeholder_image_digest_before_touching_the_cluster(tmp_path: Path) -> None:
    """An overlay copied without the release's digest stops at once, not as pods that cannot pull."""
    calls = tmp_path / "calls"
    # A kubectl that renders with the real one and records everything else (no cluster is ever reached).
    fake = tmp_path / "kubectl"
    fake.write_text(f'#!/bin/sh\necho "$*" >>{calls}\n[ "$1" != kustomize ] || exec {KUBECTL} "$@"\n')
    fake.chmod(0o755)
    result = subprocess.run(
        ["bash", str(K8S / "deploy.sh"), str(K8S / "overlays" / "example")],
        env={"KUBECTL": str(fake), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "set the release's image digest" in result.stderr
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["kustomize"]


def test_the_mail_sender_runs_the_app_image_with_its_configuration(overlay: list[dict[str, Any]]) -> None:
    api, sender = (d["spec"]["template"]["spec"]["containers"][0] for d in by_kind(overlay, "Deployment"))
    assert sender["command"] == ["flask", "mail", "send-outbox"]
    assert sender["image"] == api["image"] and sender["envFrom"] == api["envFrom"]
    assert by_kind(overlay, "ConfigMap")[0]["data"]["MAIL_BACKEND"] == "smtp"
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(overlay, "NetworkPolicy")}
    assert policies["mail-sender"]["policyTypes"] == ["Ingress"] and "ingress" not in policies["mail-sender"]
