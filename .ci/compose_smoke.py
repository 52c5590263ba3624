"""Smoke test of the running compose stack, driven over HTTP from the Docker host.

Run by .ci/compose-smoke once `docker compose up --wait` has returned. It checks,
printing how long each check took:

- /healthz and /readyz answer 200;
- the admin login page and a static file it links (collectstatic + WhiteNoise), and a
  login with the admin user the release step created;
- a quant's access request, approved by Ops over the API, then prices read (synthetic);
- a deal whose webhook reaches a receiver on this host, signed; the receiver fails the
  first attempt, so the second one proves beat's sweeper and the webhooks worker;
- beat's log shows it sending periodic tasks and the workers' logs show them succeed;
- worker-webhooks runs as many containers as its deploy.replicas (what the webhook
  benchmark measures).

Exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import requests
from standardwebhooks.webhooks import Webhook

T = TypeVar("T")


def poll(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """Call ``check`` until it returns something other than None; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Receiver:
    """Records webhook requests; answers 500 to the first one, 200 to the others."""

    def __init__(self, address: str) -> None:
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append((time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body))
                    first = len(receiver.requests) == 1
                self.send_response(500 if first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def received(self) -> list[tuple[float, dict[str, str], bytes]]:
        with self.lock:
            return list(self.requests)


class Smoke:
    def __init__(self, args: argparse.Namespace) -> None:
        self.base = args.base_url.rstrip("/")
        self.receiver_address = args.receiver_address
        self.compose = [args.compose, "--project-directory", args.project_directory]
        self.http = requests.Session()
        self.run_id = uuid.uuid4().hex[:8]

    def url(self, path: str) -> str:
        return self.base + path

    def api(self, method: str, path: str, key: str, expected: int, body: Any = None) -> Any:
        response = self.http.request(
            method, self.url(path), json=body, headers={"Authorization": f"Api-Key {key}"}, timeout=30
        )
        expect(
            response.status_code == expected,
            f"{method} {path}: expected {expected}, got {response.status_code}: {response.text[:500]}",
        )
        return response.json() if response.content else None

    def manage(self, *command: str) -> str:
        """A management command inside the running web container."""
        result = subprocess.run(
            [*self.compose, "exec", "-T", "web", "python", "manage.py", *command],
            capture_output=True,
            text=True,
            timeout=120,
        )
        expect(result.returncode == 0, f"manage.py {' '.join(command)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def logs(self, service: str) -> str:
        result = subprocess.run(
            [*self.compose, "logs", "--no-color", "--no-log-prefix", service],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout + result.stderr

    # --- the checks ---------------------------------------------------------------------------
    def health(self) -> None:
        for path in ("/healthz", "/readyz"):
            response = self.http.get(self.url(path), timeout=10)
            expect(response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}")

    def admin_and_static(self) -> None:
        page = self.http.get(self.url("/admin/login/"), timeout=10)
        expect(page.status_code == 200 and "csrfmiddlewaretoken" in page.text, f"admin login page: {page.status_code}")
        stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page.text)
        expect(bool(stylesheets), "the admin login page links no stylesheet under /static/")
        # collectstatic ran at build time: the manifest storage gives each file a content hash.
        expect(all(re.search(r"\.[0-9a-f]{12}\.css$", path) for path in stylesheets), f"unhashed static: {stylesheets}")
        static = self.http.get(self.url(stylesheets[0]), timeout=10)
        expect(
            static.status_code == 200 and static.headers["Content-Type"].startswith("text/css"),
            f"{stylesheets[0]}: {static.status_code} {static.headers.get('Content-Type')}",
        )
        expect("max-age=315360000" in static.headers.get("Cache-Control", ""), "static file without far-future cache")
        login = self.http.post(
            self.url("/admin/login/?next=/admin/"),
            data={
                "csrfmiddlewaretoken": self.http.cookies["csrftoken"],
                "username": os.environ["DJANGO_SUPERUSER_USERNAME"],
                "password": os.environ["DJANGO_SUPERUSER_PASSWORD"],
            },
            headers={"Referer": self.url("/admin/login/")},
            allow_redirects=False,
            timeout=10,
        )
        expect(login.status_code == 302 and login.headers["Location"] == "/admin/", f"admin login: {login.status_code}")
        index = self.http.get(self.url("/admin/"), timeout=10)
        expect(index.status_code == 200 and "logout" in index.text.lower(), f"admin index: {index.status_code}")
        self.http.cookies.clear()

    def keys(self) -> None:
        output = self.manage("create_api_key", "--account", f"smoke-ops-{self.run_id}", "--role", "ops")
        self.ops_key = output.strip().splitlines()[-1]
        made = {}
        for role in ("quant", "seller", "buyer"):
            ref = f"smoke-{role}-{self.run_id}"
            self.api(
                "POST",
                "/api/v1/ops/accounts",
                self.ops_key,
                201,
                {"ref": ref, "name": f"Smoke {role}", "role": role, "email": f"{role}@example.com"},
            )
            made[role] = (
                ref,
                self.api("POST", f"/api/v1/ops/accounts/{ref}/api-keys", self.ops_key, 201, {"name": "smoke"})["key"],
            )
        # The release step seeds the catalog and schedules only: no demo account exists.
        refs = [
            account["ref"]
            for account in self.api("GET", "/api/v1/ops/accounts?page_size=1000", self.ops_key, 200)["results"]
        ]
        expect(
            not [ref for ref in refs if not ref.startswith("smoke-")], f"accounts the smoke test did not make: {refs}"
        )
        (self.quant, self.quant_key), (self.seller, self.seller_key), (self.buyer, self.buyer_key) = (
            made["quant"],
            made["seller"],
            made["buyer"],
        )

    def access_and_prices(self) -> None:
        prices = "/api/v1/datasets/BTC/prices?frequency=1h&start=2025-01-01T00:00:00Z&end=2025-01-02T00:00:00Z"
        self.api("GET", prices, self.quant_key, 403)
        request = self.api(
            "POST",
            "/api/v1/access-requests",
            self.quant_key,
            201,
            {"dataset": "BTC", "frequencies": ["1h"], "reason": "Smoke test"},
        )
        expect(request["status"] == "pending", f"new request is {request['status']}, not pending")
        queue = self.api("GET", "/api/v1/ops/access-requests?status=pending", self.ops_key, 200)
        expect(any(item["id"] == request["id"] for item in queue["results"]), "the request is not in the Ops queue")
        decided = self.api(
            "POST", f"/api/v1/ops/access-requests/{request['id']}/approve", self.ops_key, 200, {"trial_days": 7}
        )
        expect(decided["status"] == "approved", f"approved request is {decided['status']}")
        body = self.api("GET", prices, self.quant_key, 200)
        expect(body["source"] == "synthetic" and body["count"] == 24, f"prices: {json.dumps(body)[:300]}")
        expect(all(float(point["price_usd"]) > 0 for point in body["results"]), "a price is not positive")

    def deal_webhook_through_worker_and_beat(self) -> None:
        receiver = Receiver(self.receiver_address)
        url = f"http://host.docker.internal:{receiver.port}/hooks/{self.run_id}"
        endpoint = self.api(
            "POST", "/api/v1/webhook-endpoints", self.buyer_key, 201, {"url": url, "event_types": ["deal.created"]}
        )
        self.api("POST", "/api/v1/authorized-buyers", self.seller_key, 201, {"buyer": self.buyer})
        deal = self.api(
            "POST",
            "/api/v1/deals",
            self.seller_key,
            201,
            {
                "name": "Smoke bundle",
                "currency": "GBP",
                "discount": {"type": "flat", "amount": "10.00"},
                "items": [{"id": "sku-1", "name": "Bundle", "price": "60.00"}],
            },
        )
        created = time.monotonic()
        first = poll("the first webhook attempt (web -> worker -> receiver)", lambda: receiver.received() or None, 30)
        print(f"  first attempt {first[0][0] - created:.2f} s after the deal was created (answered 500)")
        both = poll(
            "the retry (beat's sweeper -> worker -> receiver)",
            lambda: got if len(got := receiver.received()) >= 2 else None,
            60,
        )
        (at1, headers1, _), (at2, headers2, body2) = both[0], both[1]
        print(f"  retry {at2 - at1:.2f} s after the first attempt (answered 200)")
        expect(headers1["webhook-id"] == headers2["webhook-id"], "the retry has another webhook-id")
        event = Webhook(endpoint["secret"]).verify(body2, headers2)
        expect(event["type"] == "deal.created" and event["data"]["id"] == deal["id"], f"webhook body: {event}")
        receiver.server.shutdown()

    def config(self) -> Any:
        return json.loads(
            subprocess.run(
                [*self.compose, "config", "--format", "json"], capture_output=True, text=True, check=True, timeout=60
            ).stdout
        )

    def web_runs_its_whole_command(self) -> None:
        command = self.config()["services"]["web"]["command"]
        workers = int(next(part for part in command if part.startswith("--workers=")).split("=", 1)[1])
        log = self.logs("web")
        booted = len(re.findall(r"Booting worker with pid", log))
        expect(booted == workers, f"web booted {booted} gunicorn workers, its command says {workers}")
        expect(re.search(r'"GET /healthz HTTP/1\.[01]" 200', log) is not None, "web's access log is not on stdout")
        expect("Control server error" not in log, "gunicorn's control server failed")
        print(f"  gunicorn: {workers} workers booted, access log on stdout, no control server error")

    def worker_probes_without_hostname_variable(self) -> None:
        config = self.config()
        for service in ("worker", "worker-webhooks"):
            kind, probe = config["services"][service]["healthcheck"]["test"]
            expect(kind == "CMD-SHELL", f"{service}: health check is {kind}")
            # As under podman, whose exec sets no $HOSTNAME; `config` keeps `$$` escaped.
            result = subprocess.run(
                [*self.compose, "exec", "-T", service, "env", "-u", "HOSTNAME", "sh", "-c", probe.replace("$$", "$")],
                capture_output=True,
                text=True,
                timeout=60,
            )
            expect(result.returncode == 0, f"{service} health check without $HOSTNAME: {result.stdout}{result.stderr}")

    def webhooks_worker_replicas(self) -> None:
        replicas = int(self.config()["services"]["worker-webhooks"].get("deploy", {}).get("replicas", 1))
        result = subprocess.run(
            [*self.compose, "ps", "-q", "--status", "running", "worker-webhooks"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        running = len(result.stdout.split())
        expect(running == replicas, f"worker-webhooks runs {running} containers, its deploy.replicas says {replicas}")
        print(f"  worker-webhooks: {running} containers running, as deploy.replicas says")

    def beat_and_workers_logs(self) -> None:
        sent = set(re.findall(r"Sending due task .+? \(([\w.]+)\)$", self.logs("beat"), re.MULTILINE))
        expect(bool(sent), "beat's log shows no periodic task sent")
        worker_logs = self.logs("worker") + self.logs("worker-webhooks")
        succeeded = {name for name in sent if re.search(rf"Task {re.escape(name)}\[[^\]]+\] succeeded", worker_logs)}
        expect(bool(succeeded), f"no task that beat sent ({sorted(sent)}) succeeded in a worker's log")
        print(f"  beat sent {sorted(sent)}; workers ran {sorted(succeeded)}")

    def run(self) -> None:
        checks = [
            ("healthz and readyz", self.health),
            ("admin login page, static file, admin login", self.admin_and_static),
            ("ops key (manage.py create_api_key) and accounts over the API", self.keys),
            ("access request approved by Ops, prices read", self.access_and_prices),
            ("deal webhook to the host, retried by beat's sweeper", self.deal_webhook_through_worker_and_beat),
            ("beat and workers ran periodic tasks", self.beat_and_workers_logs),
            ("worker health checks pass without $HOSTNAME", self.worker_probes_without_hostname_variable),
            ("worker-webhooks runs as many processes as the benchmark measures", self.webhooks_worker_replicas),
            ("web runs every argument of its command", self.web_runs_its_whole_command),
        ]
        started = time.monotonic()
        passed = 0
        try:
            for name, check in checks:
                began = time.monotonic()
                check()
                passed += 1
                print(f"compose smoke: ok  {name} ({time.monotonic() - began:.1f} s)", flush=True)
        finally:
            # Each check needs the ones before it: the first failure ends the run.
            print(f"compose smoke: {time.monotonic() - started:.1f} s", flush=True)
            print(f"compose-smoke: {passed} passed, {int(passed < len(checks))} failed", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--receiver-address", required=True, help="host address the containers reach")
    parser.add_argument("--compose", required=True, help="the docker-compose binary")
    parser.add_argument("--project-directory", required=True)
    try:
        Smoke(parser.parse_args()).run()
    except AssertionError as failure:
        print(f"compose smoke: FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
