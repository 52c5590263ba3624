"""docker-compose.yml as Compose v2 reads it, and the production settings .env.example documents.

`docker compose config` needs no engine: these tests run the pinned Compose binary
(requirements-dev.txt) on the real file. The stack itself is built and run by
`.ci/compose-smoke` in CI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose
import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(compose.__file__).parent / "docker-compose"
APP_SERVICES = ("release", "web", "worker", "worker-webhooks", "beat")


def compose_config(tmp_path: Path, env: dict[str, str], dotenv: str = "") -> subprocess.CompletedProcess[str]:
    """`docker compose config` with only ``env`` in the environment and ``dotenv`` as the .env file."""
    env_file = tmp_path / "compose.env"
    env_file.write_text(dotenv)
    return subprocess.run(
        [str(COMPOSE), "--project-directory", str(ROOT), "--env-file", str(env_file), "config", "--format", "json"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def rendered(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    secrets_env = {"SECRET_KEY": "s" * 50, "POSTGRES_PASSWORD": "pg0123456789"}
    result = compose_config(tmp_path, {**secrets_env, **(env or {})})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "POSTGRES_PASSWORD"])
def test_a_missing_secret_stops_the_stack_with_a_message_naming_it(tmp_path, missing):
    env = {"SECRET_KEY": "s" * 50, "POSTGRES_PASSWORD": "pg0123456789"}
    del env[missing]
    result = compose_config(tmp_path, env)
    assert result.returncode != 0
    assert f"set {missing} in the environment or .env" in result.stderr


def test_an_empty_secret_counts_as_missing(tmp_path):
    result = compose_config(tmp_path, {"SECRET_KEY": "", "POSTGRES_PASSWORD": "pg0123456789"})
    assert result.returncode != 0
    assert "set SECRET_KEY in the environment or .env" in result.stderr


def test_secrets_come_from_the_dotenv_file(tmp_path):
    key = secrets.token_urlsafe(50)
    result = compose_config(tmp_path, {}, dotenv=f"SECRET_KEY={key}\nPOSTGRES_PASSWORD=fromdotenv42\n")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    for name in APP_SERVICES:
        environment = config["services"][name]["environment"]
        assert environment["SECRET_KEY"] == key
        assert environment["DATABASE_URL"] == "postgres://backoffice:fromdotenv42@postgres:5432/backoffice"
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "fromdotenv42"


def test_the_file_carries_no_secret_or_admin_password_of_its_own(tmp_path):
    config = rendered(tmp_path)
    for name in APP_SERVICES:
        environment = config["services"][name]["environment"]
        assert environment["DJANGO_SUPERUSER_USERNAME"] == ""
        assert environment["DJANGO_SUPERUSER_PASSWORD"] == ""
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{(SECRET_KEY|POSTGRES_PASSWORD|DJANGO_SUPERUSER_PASSWORD):-[^}]", text)


def test_production_start_seeds_no_demo_data_and_the_web_command_keeps_every_argument(tmp_path):
    services = rendered(tmp_path)["services"]
    assert services["release"]["command"] == [
        "sh",
        "-c",
        "python manage.py migrate --noinput && python manage.py seed --no-demo",
    ]
    for name in ("web", "worker", "worker-webhooks", "beat"):
        assert not any("seed" in part for part in services[name]["command"]), name
        assert services[name]["depends_on"]["release"]["condition"] == "service_completed_successfully"
    web = services["web"]["command"]
    assert web[:2] == ["gunicorn", "config.wsgi:application"]
    assert "--bind=0.0.0.0:8000" in web and "--access-logfile=-" in web
    assert "--no-control-socket" in web
    assert any(part.startswith("--workers=") for part in web)


def test_postgres_and_redis_publish_no_port_and_the_web_port_is_configurable(tmp_path):
    services = rendered(tmp_path, {"WEB_PORT": "18555"})["services"]
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    assert services["web"]["ports"] == [
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 8000, "published": "18555", "protocol": "tcp"}
    ]


def test_worker_health_checks_do_not_rely_on_a_variable_only_docker_sets(tmp_path):
    services = rendered(tmp_path)["services"]
    for name in ("worker", "worker-webhooks"):
        probe = " ".join(services[name]["healthcheck"]["test"])
        # Docker sets $HOSTNAME for `exec`, podman does not; $(hostname) works under both.
        assert "HOSTNAME" not in probe, probe
        assert "inspect ping" in probe


def test_the_webhook_benchmark_measures_the_webhooks_worker_compose_runs(tmp_path):
    from bench import webhooks as bench

    worker = rendered(tmp_path)["services"]["worker-webhooks"]
    command = [part for part in worker["command"] if part not in ("--loglevel", "INFO")]
    assert command == bench.WORKER_COMMAND
    assert worker["deploy"]["replicas"] == bench.WORKER_PROCESSES


def test_the_mixed_benchmark_measures_the_web_settings_compose_and_the_image_run(tmp_path):
    from bench import deals as bench

    command = rendered(tmp_path)["services"]["web"]["command"]
    assert f"--workers={bench.GUNICORN_WORKERS}" in command
    assert f"--threads={bench.GUNICORN_THREADS}" in command
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f'"--workers", "{bench.GUNICORN_WORKERS}", "--threads", "{bench.GUNICORN_THREADS}"' in dockerfile


def test_the_dockerfile_needs_no_registry_frontend():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax=", dockerfile, re.MULTILINE)
    assert '"--no-control-socket"' in dockerfile


def documented_production_settings() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text()
    block = text.split("# --- Production", 1)[1]
    return dict(re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", block, re.MULTILINE))


def test_check_deploy_passes_with_the_documented_production_settings():
    documented = documented_production_settings()
    assert documented["DEBUG"] == "false" and documented["SECURE_SSL_REDIRECT"] == "true"
    env = {key: value for key, value in os.environ.items() if key not in documented}
    env.update(documented)
    # The secrets come from the secret store; .env.example only says how to make them.
    env.update(
        {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
            "COINCAP_API_KEY": "from-the-secret-store",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_health_endpoints_answer_plain_http_when_everything_else_is_redirected(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/datasets").status_code == 301
