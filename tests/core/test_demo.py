"""The embedded demo as a new user meets it: `make run`'s commands in a real process on a free port."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.receiver import WebhookReceiver
from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
        except requests.ConnectionError:
            return False
        return True

    wait_until(answers, timeout, f"the demo did not answer on {url} within {timeout}s", interval=0.1)


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp_path = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "WEBHOOKS_ALLOW_PRIVATE_URLS"}}
    env.update(
        SQLITE_PATH=str(tmp_path / "demo.sqlite3"),
        DJANGO_SETTINGS_MODULE="config.settings",
        WEBHOOKS_RETRY_SCHEDULE="1",
        WEBHOOKS_RETRY_JITTER="0",
    )
    env.pop("BACKOFFICE_EMBEDDED_NOTICE", None)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def demo(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(base URL, seed output, demo output so far) of a running embedded demo, shared by this module's tests."""
    tmp_path = tmp_path_factory.mktemp("demo-run")
    _manage(demo_env, "migrate", "--noinput")
    seed_output = _manage(demo_env, "seed")
    port = free_port()
    log = (tmp_path / "demo.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=demo_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base + "/healthz", process)
        yield base, seed_output, (tmp_path / "demo.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_first_run_says_how_to_log_in_and_shows_a_start_page(demo, demo_env):
    base, seed_output, output = demo
    password = re.search(r"user admin, password (\S+) \(shown this once\)", output)
    assert password, output
    assert "make admin-password" in output
    assert "create_api_key --account demo-quant --role quant" in output
    assert "periodic schedules run on a timer in this process" in output
    assert "WEBHOOKS_ALLOW_PRIVATE_URLS is on" in output
    assert re.search(r"created demo-quant \(quant\) with API key \S+", seed_output)

    home = requests.get(base + "/", timeout=5)
    assert home.status_code == 200 and home.headers["Content-Type"].startswith("text/html")
    for link in ('href="/admin/"', 'href="/api/docs/"', "/api/v1/access-requests"):
        assert link in home.text

    session = requests.Session()
    session.get(base + "/admin/login/", timeout=5)
    answer = session.post(
        base + "/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": password.group(1),
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": base + "/admin/login/"},
        timeout=10,
    )
    assert answer.status_code == 200 and "Pending access requests" in answer.text
    assert "Periodic tasks run in this process" in answer.text

    # A second run: seed prints no key again, the demo still says how to get one and how to log in.
    again = _manage(demo_env, "seed")
    assert "API key" not in again
    new_password = _manage(demo_env, "demo", "--new-admin-password")
    assert re.search(r"password \S+ \(shown this once\)", new_password)


def test_the_demo_delivers_to_this_machine_and_retries_on_its_own_timer(demo):
    base, seed_output, _ = demo
    buyer_key = re.search(r"created demo-buyer \(buyer\) with API key (\S+)", seed_output).group(1)
    auth = {"Authorization": f"Api-Key {buyer_key}"}
    with WebhookReceiver() as receiver:
        receiver.respond(500)  # the first attempt fails; the in-process sweeper must retry it
        created = requests.post(
            base + "/api/v1/webhook-endpoints", json={"url": receiver.url}, headers=auth, timeout=10
        )
        assert created.status_code == 201, created.text
        ping = requests.post(base + f"/api/v1/webhook-endpoints/{created.json()['id']}/ping", headers=auth, timeout=10)
        assert ping.status_code in (200, 201, 202), ping.text
        first, second = receiver.wait_for(2, timeout=30)[:2]
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
