"""The deployment files, checked without running them: docker-compose and the Compose spec accept the
compose file, hadolint accepts the Dockerfile, and the promises that would otherwise need a reviewer's eye.
(nginx.conf: `nginx -t` and a real run are in test_stack.py; the real compose stack: scripts/compose-smoke.)"""

import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import SETTINGS
from tests.support.app import ROOT
from tests.support.kustomize import kustomize
from tests.support.stack import require


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def compose_config(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config -q` with these variables in its --env-file (and nothing from a local .env)."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    docker_compose = require("docker-compose", "apt-get install docker-compose")
    return run(docker_compose, "--env-file", str(env_file), "config", "-q", env={"PATH": "/usr/bin:/bin"})


# name:tag@sha256:<index digest>: the tag says what it is, the digest what is pulled, and Dependabot's docker
# and docker-compose ecosystems update both (a FROM that names a build arg, or a bare tag, they cannot).
PINNED = re.compile(r"[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}")
# What the compose file builds from this repository, not pulled: the app's own image.
BUILT_HERE = "flask-api-starter:latest"

SECRETS = {"SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40, "POSTGRES_PASSWORD": "p" * 40}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return services


def test_docker_compose_accepts_the_compose_file(tmp_path: Path) -> None:
    result = compose_config(tmp_path, **SECRETS, APP_ENV_FILE=str(ROOT / ".env.example"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(tmp_path: Path, missing: str) -> None:
    others = {name: value for name, value in SECRETS.items() if name != missing}
    result = compose_config(tmp_path, **others, APP_ENV_FILE=str(ROOT / ".env.example"))
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_the_compose_file_matches_the_compose_spec() -> None:
    check = require("check-jsonschema", "pip install -r requirements-dev.txt")
    result = run(check, "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_has_nothing_to_say_about_the_dockerfile() -> None:
    result = run(require("hadolint", "pip install -r requirements-dev.txt"), "Dockerfile")
    assert (result.returncode, result.stdout) == (0, ""), result.stdout


def test_the_image_runs_gunicorn_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]' in dockerfile  # exec form: gunicorn is PID 1
    assert "HEALTHCHECK" in dockerfile


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"  # an allowlist: .env, .git, venvs, tests and caches are out unless named
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert included == {"app", "migrations", "requirements.txt", "wsgi.py", "gunicorn.conf.py"}


def test_the_app_container_is_hardened(compose: dict[str, Any]) -> None:
    graceful = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["graceful_timeout"]
    for name in ("app", "migrate", "mail-sender"):
        service = compose["services"][name]
        assert service["read_only"] is True
        assert service["tmpfs"] == ["/tmp"]  # noqa: S108  (the container's own, in memory)
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["environment"]["APP_ENV"] == "production"
    assert int(compose["services"]["app"]["stop_grace_period"].rstrip("s")) > graceful


def test_the_mail_sender_is_the_app_image_running_the_outbox(compose: dict[str, Any]) -> None:
    sender, app = compose["services"]["mail-sender"], compose["services"]["app"]
    assert sender["command"] == ["flask", "mail", "send-outbox"]
    assert (sender["image"], sender["env_file"], sender["environment"]) == (
        app["image"],
        app["env_file"],
        app["environment"],
    )
    assert sender["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert sender["restart"] == "unless-stopped"


def test_the_compose_app_passes_the_production_guard_with_a_fresh_env(tmp_path: Path) -> None:
    """`make .env` then `docker compose up`: .env.example with generated secrets, and compose's own
    settings over it, is a configuration the production guard accepts; mail goes out over SMTP."""
    secrets_ = {name: secrets.token_urlsafe(48) for name in SECRETS}
    result = compose_config(tmp_path, **secrets_, APP_ENV_FILE=str(ROOT / ".env.example"))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(
        run(require("docker-compose", ""), "--env-file", str(tmp_path / "compose.env"), "config").stdout
    )
    environment = {name: str(value) for name, value in config["services"]["app"]["environment"].items()}
    assert environment["MAIL_BACKEND"] == "smtp"
    started = run(
        sys.executable, "-c", "from app import create_app; create_app()", env={**environment, "PATH": "/usr/bin:/bin"}
    )
    assert started.returncode == 0, started.stderr


def test_only_nginx_is_published(compose: dict[str, Any]) -> None:
    """Beyond nginx, only the development mail catcher, behind a profile and on the host's loopback."""
    published = {name for name, service in compose["services"].items() if "ports" in service}
    assert published == {"nginx", "mailpit"}
    assert compose["services"]["mailpit"]["profiles"] == ["dev"]
    assert all(port.startswith("127.0.0.1:") for port in compose["services"]["mailpit"]["ports"])


def test_healthchecks_work_with_podman_and_both_compose_versions(compose: dict[str, Any]) -> None:
    """podman 4.3 splits a ["CMD", ...] list on spaces, so every check is CMD-SHELL."""
    for name, service in compose["services"].items():
        if "test" in service.get("healthcheck", {}):
            assert service["healthcheck"]["test"][0] == "CMD-SHELL", name


def test_nginx_takes_the_same_body_limit_as_the_app() -> None:
    limit = re.search(r"client_max_body_size\s+(\d+)m;", (ROOT / "nginx.conf").read_text())
    assert limit and int(limit.group(1)) * 1024 * 1024 == int(SETTINGS["MAX_CONTENT_LENGTH"].default)


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-dev.txt"])
def test_every_pin_carries_its_hashes_and_installs_require_them(lock: str) -> None:
    text = (ROOT / lock).read_text()
    pins = re.findall(r"^([A-Za-z0-9._\[\]-]+==\S+)((?: \\\n    --hash=sha256:[0-9a-f]{64})+)", text, re.MULTILINE)
    requirements = re.findall(r"^[A-Za-z0-9]", text, re.MULTILINE)
    assert pins and len(pins) == len(requirements), f"{lock}: a pin without --hash (run make lock)"
    # pip checks them only when told to, or when every line has one; the installs say so.
    assert "--require-hashes -r /tmp/requirements.txt" in (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements-dev.txt" in (ROOT / "Makefile").read_text()


def test_every_base_image_is_pinned_by_tag_and_digest() -> None:
    """The Dockerfile's FROM lines name a pinned image literally, or an earlier stage."""
    stages: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", line, re.IGNORECASE)
        if match:
            image, stage = match.groups()
            assert image in stages or PINNED.fullmatch(image), line
            stages |= {stage} if stage else set()
    assert stages, "no named stage: the pinned image is named once"


def test_every_compose_image_is_pinned_by_tag_and_digest(compose: dict[str, Any]) -> None:
    """${X_IMAGE:-default}: a stand-in may replace it (scripts/compose-smoke); the default is pinned."""
    for name, service in compose["services"].items():
        match = re.fullmatch(r"\$\{[A-Z_]+_IMAGE:-(.+)\}", service["image"])
        assert match, f"{name}: {service['image']}"
        assert PINNED.fullmatch(match.group(1)) or ("build" in service and match.group(1) == BUILT_HERE), name
        assert "args" not in service.get("build", {}), f"{name}: a base image by build arg is invisible to Dependabot"


@pytest.mark.parametrize("folder", ["base", "overlays/example"])
def test_every_kubernetes_image_is_pinned_by_tag_and_digest(folder: str) -> None:
    pods = [
        obj["spec"]["template"]["spec"]
        for obj in kustomize(ROOT / "deploy" / "k8s" / folder)
        if "template" in obj.get("spec", {})
    ]
    images = [c["image"] for pod in pods for c in pod["containers"] + pod.get("initContainers", [])]
    assert images and all(PINNED.fullmatch(image) for image in images), images


def test_every_ci_service_image_is_pinned_by_tag_and_digest() -> None:
    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):
        jobs = yaml.safe_load(workflow.read_text())["jobs"].values()
        images = [service["image"] for job in jobs for service in job.get("services", {}).values()]
        assert all(PINNED.fullmatch(image) for image in images), (workflow.name, images)


def test_dependabot_watches_every_file_that_names_an_image() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert {"docker", "docker-compose"} <= ecosystems
