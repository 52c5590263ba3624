"""Deals mixed load against gunicorn + PostgreSQL, with real webhook delivery.

``python -m bench deals`` (or ``make bench``) with DATABASE_URL pointing at a
benchmark database (created and migrated here; its deals and webhook tables are
emptied first) and REDIS_URL at a Redis database it may purge.

1. Seeds sellers, buyers, authorisations and deals with items, one API key each,
   and a "listener" buyer every seller authorised, whose webhook endpoint is a
   local receiver (a separate process verifying Standard Webhooks signatures).
2. Starts gunicorn (gthread, 3 workers x 8 threads as docker-compose.yml runs it) on
   config.wsgi and a ``celery -A config worker -Q
   default,webhooks --pool threads`` (the webhooks worker's pool, see
   docs/decisions/0015), both on 127.0.0.1 and an ephemeral port.
3. Holds BENCH_DEALS_CONNECTIONS concurrent connections (aiohttp) for
   BENCH_DEALS_SECONDS (or until BENCH_DEALS_MAX_REQUESTS): 90% buyer reads (list
   and get) and 10% seller writes (PATCH and POST).
4. Reports requests/s, p50/p99 latency, errors, and the latency from each write
   (the deal's ``updated_at``) to the listener receiving its webhook.

Every limit is bounded; all traffic stays on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent

CONNECTIONS = int(os.environ.get("BENCH_DEALS_CONNECTIONS", "1000"))
SECONDS = float(os.environ.get("BENCH_DEALS_SECONDS", "30"))
WARMUP_SECONDS = float(os.environ.get("BENCH_DEALS_WARMUP_SECONDS", "5"))
MAX_REQUESTS = int(os.environ.get("BENCH_DEALS_MAX_REQUESTS", "200000"))
SELLERS = int(os.environ.get("BENCH_DEALS_SELLERS", "50"))
BUYERS = int(os.environ.get("BENCH_DEALS_BUYERS", "500"))
DEALS_PER_SELLER = int(os.environ.get("BENCH_DEALS_PER_SELLER", "40"))
SELLERS_PER_BUYER = int(os.environ.get("BENCH_DEALS_SELLERS_PER_BUYER", "5"))
ITEMS_PER_DEAL = 3
WRITE_SHARE = 0.10
GUNICORN_WORKERS = int(os.environ.get("BENCH_DEALS_GUNICORN_WORKERS", "3"))
# The web settings docker-compose.yml runs (3 x 8); BENCH_DEALS_GUNICORN_* to try others.
GUNICORN_THREADS = int(os.environ.get("BENCH_DEALS_GUNICORN_THREADS", "8"))
CELERY_CONCURRENCY = int(os.environ.get("BENCH_DEALS_CELERY_CONCURRENCY", "8"))
WEBHOOK_WAIT_SECONDS = 60.0
REQUEST_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# --- the webhook receiver (its own process) --------------------------------------------


def receiver_main(port: int, secret: str, out_path: str) -> None:
    """Record each verified delivery as a JSON line: receipt time, event type, deal id, version, updated_at."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks.webhooks import Webhook

    verifier = Webhook(secret)
    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - closed with the process

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received = time.time()
            try:
                envelope = verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                data = envelope["data"]
                record = {
                    "received": received,
                    "type": envelope["type"],
                    "id": data.get("id"),
                    "version": data.get("version"),
                    "updated_at": data.get("updated_at"),
                    "webhook_id": self.headers.get("webhook-id"),
                }
                status = 204
            except Exception as exc:  # a bad signature is a finding, not a crash
                record = {"received": received, "invalid": str(exc)}
                status = 400
            out.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


# --- setup -------------------------------------------------------------------------------


def _bench_env() -> dict[str, str]:
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise SystemExit("DATABASE_URL must point at a benchmark database (make bench sets one ending in _bench).")
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key-not-for-production-0123456789"),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
        # The benchmark's few keys make far more calls than one client would.
        "API_RATE_LIMIT": "100000000/min",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def _database_create(database_url: str) -> None:
    import psycopg

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


@dataclass
class Fixture:
    seller_keys: dict[str, str] = field(default_factory=dict)
    buyer_keys: dict[str, str] = field(default_factory=dict)
    seller_deals: dict[str, list[str]] = field(default_factory=dict)
    buyer_deals: dict[str, list[str]] = field(default_factory=dict)
    webhook_secret: str = ""


def _seed(receiver_url: str) -> Fixture:
    import django

    django.setup()
    from django.apps import apps
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts import services as account_services
    from accounts.models import Role
    from deals.models import BuyerAuthorization, Deal, DealItem
    from webhooks import services as webhook_services

    tables = [m._meta.db_table for app in ("deals", "webhooks") for m in apps.get_app_config(app).get_models()]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")

    rng = random.Random(42)
    fixture = Fixture()
    with transaction.atomic():

        def account(ref: str, role: str) -> Any:
            acct, _ = account_services.account_get_or_create(ref=ref, role=role, name=ref)
            return acct

        sellers = [account(f"bench-seller-{n}", Role.SELLER) for n in range(SELLERS)]
        buyers = [account(f"bench-buyer-{n}", Role.BUYER) for n in range(BUYERS)]
        listener = account("bench-listener", Role.BUYER)
        for acct in [*sellers, *buyers]:
            _, key = account_services.api_key_create(account=acct, name="bench")
            (fixture.seller_keys if acct.role == Role.SELLER else fixture.buyer_keys)[acct.ref] = key

        now = timezone.now()
        deals = Deal.objects.bulk_create(
            [
                Deal(
                    seller=seller,
                    name=f"{seller.ref} deal {n}",
                    currency="GBP",
                    total_price=Decimal("30.00"),
                    discount_type="percentage",
                    discount_amount=Decimal("10"),
                    final_price=Decimal("27.00"),
                    created_at=now,
                    updated_at=now,
                )
                for seller in sellers
                for n in range(DEALS_PER_SELLER)
            ]
        )
        DealItem.objects.bulk_create(
            [
                DealItem(deal=deal, position=i, ref=f"sku-{i}", name=f"Item {i}", price=Decimal("10.00"))
                for deal in deals
                for i in range(ITEMS_PER_DEAL)
            ]
        )
        by_seller: dict[int, list[str]] = {}
        for deal in deals:
            by_seller.setdefault(deal.seller_id, []).append(str(deal.public_id))
        fixture.seller_deals = {s.ref: by_seller[s.pk] for s in sellers}

        authorizations = [BuyerAuthorization(seller=s, buyer=listener) for s in sellers]
        for buyer in buyers:
            chosen = rng.sample(sellers, SELLERS_PER_BUYER)
            authorizations += [BuyerAuthorization(seller=s, buyer=buyer) for s in chosen]
            fixture.buyer_deals[buyer.ref] = [d for s in chosen for d in by_seller[s.pk]]
        BuyerAuthorization.objects.bulk_create(authorizations)

        endpoint = webhook_services.endpoint_create(account=listener, url=receiver_url)
        fixture.webhook_secret = endpoint.secret
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}, accounts_account, accounts_accountapikey")
    connection.close()
    return fixture


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline_seconds: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready within {deadline_seconds}s")


def _wait_pipeline(base: str, fixture: Fixture, out_path: str, deadline_seconds: float = 60) -> None:
    """One write, and wait until its webhook arrives: the worker is up before the clock starts."""
    import urllib.request

    seller = next(iter(fixture.seller_keys))
    request = urllib.request.Request(
        f"{base}/api/v1/deals/{fixture.seller_deals[seller][0]}",
        data=json.dumps({"name": f"{seller} warm-up {time.time()}"}).encode(),
        headers={"Authorization": f"Api-Key {fixture.seller_keys[seller]}", "Content-Type": "application/json"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        deal = json.loads(response.read())
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with open(out_path) as lines:
            if any(json.loads(line).get("version") == deal["version"] for line in lines):
                return
        time.sleep(0.1)
    raise SystemExit("the celery worker delivered no webhook within the deadline")


# --- load --------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    writes: list[tuple[str, int, str]] = field(default_factory=list)  # (deal id, version, updated_at)

    def record(self, op: str, seconds: float) -> None:
        self.latencies.setdefault(op, []).append(seconds)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def _load(base: str, fixture: Fixture, results: Results, measure_from: float, stop_at: float) -> int:
    import aiohttp

    buyer_refs = list(fixture.buyer_keys)
    seller_refs = list(fixture.seller_keys)
    issued = 0
    revision = 0

    async def one(session: aiohttp.ClientSession, rng: random.Random) -> None:
        nonlocal revision
        if rng.random() >= WRITE_SHARE:
            buyer = rng.choice(buyer_refs)
            headers = {"Authorization": f"Api-Key {fixture.buyer_keys[buyer]}"}
            if rng.random() < 0.5:
                op, method, url, body = "buyer list", "GET", f"{base}/api/v1/deals?page_size=20", None
            else:
                deal_id = rng.choice(fixture.buyer_deals[buyer])
                op, method, url, body = "buyer get", "GET", f"{base}/api/v1/deals/{deal_id}", None
        else:
            seller = rng.choice(seller_refs)
            headers = {"Authorization": f"Api-Key {fixture.seller_keys[seller]}"}
            revision += 1
            if rng.random() < 0.8:
                deal_id = rng.choice(fixture.seller_deals[seller])
                price = f"{rng.randint(100, 5000) / 100:.2f}"
                op, method, url = "seller patch", "PATCH", f"{base}/api/v1/deals/{deal_id}"
                body = {
                    "name": f"{seller} revision {revision}",
                    "items": [{"id": f"sku-{i}", "name": f"Item {i}", "price": price} for i in range(ITEMS_PER_DEAL)],
                }
            else:
                op, method, url = "seller post", "POST", f"{base}/api/v1/deals"
                body = {
                    "name": f"{seller} new deal {revision}",
                    "currency": "gbp",
                    "discount": {"type": "flat", "amount": "1.50"},
                    "items": [{"id": "a", "name": "A", "price": "12.00"}, {"id": "b", "name": "B", "price": 3.5}],
                }
        started = time.monotonic()
        try:
            async with session.request(method, url, json=body, headers=headers) as response:
                payload = await response.read()
                elapsed = time.monotonic() - started
                expected = 201 if method == "POST" else 200
                if response.status != expected:
                    results.error(f"{op}: HTTP {response.status} {payload[:120]!r}")
                    return
                if method != "GET":
                    deal = json.loads(payload)
                    results.writes.append((deal["id"], deal["version"], deal["updated_at"]))
        except (aiohttp.ClientError, TimeoutError) as exc:
            results.error(f"{op}: {type(exc).__name__} {exc}"[:160])
            return
        if started >= measure_from:
            results.record(op, elapsed)

    async def connection_loop(n: int, session: aiohttp.ClientSession) -> None:
        nonlocal issued
        rng = random.Random(n)
        while time.monotonic() < stop_at and issued < MAX_REQUESTS:
            issued += 1
            await one(session, rng)

    connector = aiohttp.TCPConnector(limit=CONNECTIONS, limit_per_host=CONNECTIONS, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(connection_loop(n, session) for n in range(CONNECTIONS)))
    return issued


def _webhook_latencies(out_path: str, writes: list[tuple[str, int, str]]) -> tuple[list[float], int, int]:
    """Seconds from each write's ``updated_at`` to the receipt of its webhook; and how many are missing / invalid."""
    wanted = {(deal_id, version): updated_at for deal_id, version, updated_at in writes}
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    received: dict[tuple[str, int], float] = {}
    invalid = 0
    while True:
        received.clear()
        invalid = 0
        with open(out_path) as lines:
            for line in lines:
                record = json.loads(line)
                if "invalid" in record:
                    invalid += 1
                    continue
                key = (record["id"], record["version"])
                if key in wanted:
                    received.setdefault(key, record["received"])
        if len(received) >= len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    latencies = [
        received[key] - datetime.fromisoformat(wanted[key].replace("Z", "+00:00")).timestamp() for key in received
    ]
    return latencies, len(wanted) - len(received), invalid


def _stop(process: subprocess.Popen[Any] | Any) -> None:
    if process is None:
        return
    if isinstance(process, subprocess.Popen):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    else:
        process.terminate()
        process.join(timeout=10)


def main() -> None:
    import multiprocessing

    env = _bench_env()
    os.environ.update(env)
    python = sys.executable
    bindir = Path(python).parent
    print(f"database {env['DATABASE_URL']}, broker {env['REDIS_URL']}", flush=True)
    _database_create(env["DATABASE_URL"])
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    out_file = tempfile.NamedTemporaryFile(prefix="bench-webhooks-", suffix=".jsonl", delete=False)  # noqa: SIM115
    out_file.close()
    receiver_port, app_port = _free_port(), _free_port()
    fixture = _seed(f"http://127.0.0.1:{receiver_port}/webhook")
    print(
        f"seeded {SELLERS} sellers x {DEALS_PER_SELLER} deals x {ITEMS_PER_DEAL} items, {BUYERS} buyers "
        f"authorised by {SELLERS_PER_BUYER} sellers each, one webhook listener",
        flush=True,
    )

    receiver = multiprocessing.get_context("spawn").Process(
        target=receiver_main, args=(receiver_port, fixture.webhook_secret, out_file.name), daemon=True
    )
    gunicorn = celery = None
    try:
        receiver.start()
        subprocess.run(
            [str(bindir / "celery"), "-A", "config", "purge", "-f", "-Q", "default,webhooks"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        celery = subprocess.Popen(
            [
                str(bindir / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                "default,webhooks",
                "--pool",
                "threads",
                "--concurrency",
                str(CELERY_CONCURRENCY),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env={**env, "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "4"},
        )
        gunicorn_command = [
            str(bindir / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{app_port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(GUNICORN_WORKERS),
            "--threads",
            str(GUNICORN_THREADS),
            "--worker-connections",
            str(CONNECTIONS),
            "--backlog",
            "4096",
            "--keep-alive",
            "300",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ]
        gunicorn = subprocess.Popen(
            gunicorn_command,
            cwd=ROOT,
            env={**env, "DB_POOL_MIN_SIZE": str(GUNICORN_THREADS), "DB_POOL_MAX_SIZE": str(GUNICORN_THREADS)},
        )
        base = f"http://127.0.0.1:{app_port}"
        _wait_ready(f"{base}/readyz", gunicorn)
        print(
            f"gunicorn gthread {GUNICORN_WORKERS} workers x {GUNICORN_THREADS} threads "
            f"(pool {GUNICORN_THREADS} per worker), celery worker concurrency {CELERY_CONCURRENCY}",
            flush=True,
        )

        _wait_pipeline(base, fixture, out_file.name)

        load_before = os.getloadavg()[0]
        results = Results()
        started = time.monotonic()
        measure_from = started + WARMUP_SECONDS
        stop_at = measure_from + SECONDS
        issued = asyncio.run(_load(base, fixture, results, measure_from, stop_at))
        wall = time.monotonic() - measure_from
        webhook, missing, invalid = _webhook_latencies(out_file.name, results.writes)
    finally:
        for process in (gunicorn, celery, receiver):
            _stop(process)
        Path(out_file.name).unlink(missing_ok=True)

    load_after = os.getloadavg()[0]
    measured = [v for values in results.latencies.values() for v in values]
    errors = sum(results.errors.values())
    print(
        f"\n{CONNECTIONS} concurrent connections, {SECONDS:.0f} s measured after {WARMUP_SECONDS:.0f} s warm-up, "
        f"{issued} requests issued in all; {os.cpu_count()} CPUs, load average {load_before:.1f} before and "
        f"{load_after:.1f} after"
    )
    print(f"throughput: {len(measured) / wall:.0f} requests/s ({len(measured)} measured)")
    print(f"latency all: p50 {_percentile(measured, 50) * 1000:.0f} ms, p99 {_percentile(measured, 99) * 1000:.0f} ms")
    for op, values in sorted(results.latencies.items()):
        print(
            f"  {op:<13} n={len(values):>6}  p50 {_percentile(values, 50) * 1000:>6.0f} ms  "
            f"p99 {_percentile(values, 99) * 1000:>6.0f} ms"
        )
    print(f"errors: {errors}")
    for what, count in sorted(results.errors.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {count} x {what}")
    print(
        f"webhooks: {len(webhook)} of {len(results.writes)} writes received by the listener "
        f"({missing} missing after {WEBHOOK_WAIT_SECONDS:.0f} s, {invalid} with a bad signature)"
    )
    if webhook:
        print(
            f"write-to-webhook latency: p50 {_percentile(webhook, 50) * 1000:.0f} ms, "
            f"p99 {_percentile(webhook, 99) * 1000:.0f} ms, max {max(webhook) * 1000:.0f} ms, "
            f"mean {statistics.fmean(webhook) * 1000:.0f} ms"
        )
    if errors or missing or invalid:
        raise SystemExit("the deals benchmark saw errors")
