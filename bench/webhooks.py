"""Webhook delivery from outside: fan-out, latency at steady rates, a closed-loop write load,
and a hanging receiver beside a healthy one.

``python -m bench webhooks`` (or ``make bench``) with DATABASE_URL pointing at a benchmark
database (created and migrated here; its deals and webhook tables are emptied first) and
REDIS_URL at a Redis database it may purge. Separate processes: gunicorn serving the API,
the Celery workers for the webhooks queue (the command and the number of replicas
docker-compose.yml runs), one receiver process verifying every Standard Webhooks signature,
and this load generator. Beat is not started: the figures are the on-commit fast path's (the
sweeper only takes over work whose claim lapsed or was deferred).

(a) one ``deal.updated`` fanned out to BENCH_WEBHOOKS_FANOUT (1,000) buyer endpoints:
    deliveries/s from the write's commit to the last receipt;
(b) open-loop PATCHes at 50 and 100 writes/s for 20 s each: commit-to-receipt p50/p95/p99;
(c) 64 connections PATCHing as fast as they can for 15 s: writes/s, deliveries/s during the
    load, seconds to drain after it;
(d) a healthy endpoint's p99 at 50 writes/s while another account's endpoint hangs, beside
    its p99 without the hanging one, in the same run.

Commit time is the deal's ``updated_at`` (set inside the writing transaction, so slightly
before the commit: the figures include the commit). All traffic stays on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.deals import _bench_env, _database_create, _free_port, _percentile, _stop, _wait_ready

ROOT = Path(__file__).resolve().parent.parent

FANOUT = int(os.environ.get("BENCH_WEBHOOKS_FANOUT", "1000"))
RATES = [float(r) for r in os.environ.get("BENCH_WEBHOOKS_RATES", "50,100").split(",")]
RATE_SECONDS = float(os.environ.get("BENCH_WEBHOOKS_RATE_SECONDS", "20"))
CLOSED_CONNECTIONS = int(os.environ.get("BENCH_WEBHOOKS_CONNECTIONS", "64"))
CLOSED_SECONDS = float(os.environ.get("BENCH_WEBHOOKS_CLOSED_SECONDS", "15"))
HANG_RATE = float(os.environ.get("BENCH_WEBHOOKS_HANG_RATE", "50"))
HANG_SECONDS = float(os.environ.get("BENCH_WEBHOOKS_HANG_SECONDS", "15"))
GUNICORN_WORKERS = int(os.environ.get("BENCH_WEBHOOKS_GUNICORN_WORKERS", "2"))
GUNICORN_THREADS = int(os.environ.get("BENCH_WEBHOOKS_GUNICORN_THREADS", "4"))
# The webhooks worker exactly as docker-compose.yml runs it.
WORKER_COMMAND = os.environ.get(
    "BENCH_WEBHOOKS_WORKER", "celery -A config worker -Q webhooks --pool threads --concurrency 8"
).split()
# How many such worker processes: the replicas of worker-webhooks in docker-compose.yml.
WORKER_PROCESSES = int(os.environ.get("BENCH_WEBHOOKS_WORKER_PROCESSES", "2"))
DEALS = 200  # the main seller's deals, PATCHed in turn
WAIT_SECONDS = 60.0


# --- the receiver (its own process) ------------------------------------------------------


def receiver_main(port: int, secrets_path: str, out_path: str) -> None:
    """Verify each delivery with its endpoint's secret (the path names the endpoint), answer 204,
    and record receipt time, deal id, version and updated_at. ``/hang/...`` never answers."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks.webhooks import Webhook

    with open(secrets_path) as f:
        verifiers = {path: Webhook(secret) for path, secret in json.load(f).items()}
    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - closed with the process

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received = time.time()
            if self.path.startswith("/hang"):
                time.sleep(3600)
                return
            try:
                envelope = verifiers[self.path].verify(body, {k.lower(): v for k, v in self.headers.items()})
                data = envelope["data"]
                record = {
                    "received": received,
                    "path": self.path,
                    "id": data.get("id"),
                    "version": data.get("version"),
                    "updated_at": data.get("updated_at"),
                }
                status = 204
            except Exception as exc:  # a bad signature is a finding, not a crash
                record = {"received": received, "path": self.path, "invalid": str(exc)}
                status = 400
            out.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024

    server = Server(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


# --- setup -------------------------------------------------------------------------------


@dataclass
class Fixture:
    seller_key: str = ""
    deals: list[str] = field(default_factory=list)
    fan_seller_key: str = ""
    fan_deal: str = ""
    hang_seller_key: str = ""
    hang_deals: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)


def _seed(receiver: str) -> Fixture:
    import django

    django.setup()
    from django.apps import apps
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts import services as account_services
    from accounts.models import Account, Role
    from deals.models import BuyerAuthorization, Deal, DealItem
    from webhooks.models import Endpoint

    tables = [m._meta.db_table for app in ("deals", "webhooks") for m in apps.get_app_config(app).get_models()]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    fixture = Fixture()
    now = timezone.now()
    with transaction.atomic():

        def account(ref: str, role: str) -> Account:
            acct, _ = account_services.account_get_or_create(ref=ref, role=role, name=ref)
            return acct

        def deals(seller: Account, n: int) -> list[str]:
            made = Deal.objects.bulk_create(
                [
                    Deal(
                        seller=seller,
                        name=f"{seller.ref} deal {i}",
                        currency="GBP",
                        total_price=Decimal("30.00"),
                        discount_type="percentage",
                        discount_amount=Decimal("10"),
                        final_price=Decimal("27.00"),
                        created_at=now,
                        updated_at=now,
                    )
                    for i in range(n)
                ]
            )
            DealItem.objects.bulk_create(
                [
                    DealItem(deal=d, position=i, ref=f"sku-{i}", name=f"Item {i}", price=Decimal("10.00"))
                    for d in made
                    for i in range(3)
                ]
            )
            return [str(d.public_id) for d in made]

        from decimal import Decimal

        seller = account("bench-wh-seller", Role.SELLER)
        fan_seller = account("bench-wh-fan-seller", Role.SELLER)
        hang_seller = account("bench-wh-hang-seller", Role.SELLER)
        fixture.seller_key = account_services.api_key_create(account=seller, name="bench")[1]
        fixture.fan_seller_key = account_services.api_key_create(account=fan_seller, name="bench")[1]
        fixture.hang_seller_key = account_services.api_key_create(account=hang_seller, name="bench")[1]
        fixture.deals = deals(seller, DEALS)
        fixture.fan_deal = deals(fan_seller, 1)[0]
        fixture.hang_deals = deals(hang_seller, DEALS)

        listener = account("bench-wh-listener", Role.BUYER)
        hanging = account("bench-wh-hanging", Role.BUYER)
        fans = [account(f"bench-wh-fan-{n}", Role.BUYER) for n in range(FANOUT)]
        BuyerAuthorization.objects.bulk_create(
            [
                BuyerAuthorization(seller=seller, buyer=listener, created_at=now),
                BuyerAuthorization(seller=hang_seller, buyer=hanging, created_at=now),
                *[BuyerAuthorization(seller=fan_seller, buyer=fan, created_at=now) for fan in fans],
            ]
        )
        endpoints = [Endpoint(account=listener, url=f"{receiver}/listener", event_types=["deal.updated"])]
        endpoints.append(Endpoint(account=hanging, url=f"{receiver}/hang/1", event_types=["deal.updated"]))
        endpoints += [
            Endpoint(account=fan, url=f"{receiver}/fan/{n}", event_types=["deal.updated"]) for n, fan in enumerate(fans)
        ]
        made = Endpoint.objects.bulk_create(endpoints)
        fixture.secrets = {e.url.removeprefix(receiver): e.secret for e in made}
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}, accounts_account, accounts_accountapikey")
    connection.close()
    return fixture


# --- the receiver's record -----------------------------------------------------------------


def _receipts(out_path: str, offset: int) -> tuple[list[dict[str, Any]], int]:
    with open(out_path) as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind("\n") + 1
    return [json.loads(line) for line in data[:end].splitlines()], offset + end


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _wait_for(out_path: str, offset: int, wanted: set[tuple[str, int]], path: str) -> dict[tuple[str, int], float]:
    """Receipt times of the wanted (deal id, version) at ``path``, waiting up to WAIT_SECONDS for all."""
    got: dict[tuple[str, int], float] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    position = offset
    while True:
        records, position = _receipts(out_path, position)
        for record in records:
            if "invalid" in record:
                raise SystemExit(f"a delivery failed its signature check: {record}")
            key = (record["id"], record["version"])
            if record["path"] == path and key in wanted:
                got.setdefault(key, record["received"])
        if len(got) >= len(wanted) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


# --- load ----------------------------------------------------------------------------------


@dataclass
class Writes:
    done: list[tuple[str, int, float, float, float]] = field(default_factory=list)
    """(deal id, version, updated_at, request sent, answered)"""
    errors: int = 0


async def _patch(session: Any, base: str, key: str, deal: str, name: str, writes: Writes) -> None:
    sent = time.time()
    try:
        async with session.patch(
            f"{base}/api/v1/deals/{deal}", json={"name": name}, headers={"Authorization": f"Api-Key {key}"}
        ) as response:
            payload = await response.read()
            if response.status != 200:
                writes.errors += 1
                return
            body = json.loads(payload)
            writes.done.append((body["id"], body["version"], _ts(body["updated_at"]), sent, time.time()))
    except Exception:
        writes.errors += 1


async def _open_loop(base: str, key: str, deals: list[str], rate: float, seconds: float, tag: str) -> Writes:
    """Fire PATCHes on a fixed schedule whatever the answers do (open loop)."""
    import aiohttp

    writes = Writes()
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        start = time.monotonic()
        tasks = []
        n = 0
        while n < rate * seconds:
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            deal = deals[n % len(deals)]
            tasks.append(asyncio.create_task(_patch(session, base, key, deal, f"{tag} {n} {time.time()}", writes)))
            n += 1
        await asyncio.gather(*tasks)
    return writes


async def _closed_loop(base: str, key: str, deals: list[str], connections: int, seconds: float) -> Writes:
    import aiohttp

    writes = Writes()
    stop_at = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def loop(c: int) -> None:
            n = 0
            while time.monotonic() < stop_at:
                # Each connection PATCHes its own deals, so no two writes race for one row.
                deal = deals[(c + n * connections) % len(deals)]
                await _patch(session, base, key, deal, f"closed {c} {n} {time.time()}", writes)
                n += 1

        await asyncio.gather(*(loop(c) for c in range(connections)))
    return writes


def _latencies(writes: Writes, got: dict[tuple[str, int], float]) -> list[float]:
    return [got[(d, v)] - updated for d, v, updated, _, _ in writes.done if (d, v) in got]


def _ms(values: list[float], pct: float) -> str:
    return f"{_percentile(values, pct) * 1000:.0f} ms"


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    import multiprocessing

    env = _bench_env()
    os.environ.update(env)
    python = sys.executable
    bindir = Path(python).parent
    print(f"database {env['DATABASE_URL']}, broker {env['REDIS_URL']}", flush=True)
    _database_create(env["DATABASE_URL"])
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    receiver_port, app_port = _free_port(), _free_port()
    receiver_base = f"http://127.0.0.1:{receiver_port}"
    fixture = _seed(receiver_base)
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    out_path, secrets_path = tmp / "receipts.jsonl", tmp / "secrets.json"
    out_path.touch()
    secrets_path.write_text(json.dumps(fixture.secrets))
    receiver = multiprocessing.get_context("spawn").Process(
        target=receiver_main, args=(receiver_port, str(secrets_path), str(out_path)), daemon=True
    )
    gunicorn = None
    workers: list[subprocess.Popen[bytes]] = []
    base = f"http://127.0.0.1:{app_port}"
    try:
        receiver.start()
        subprocess.run(
            [str(bindir / "celery"), "-A", "config", "purge", "-f", "-Q", "default,pricing,webhooks"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        for n in range(WORKER_PROCESSES):
            workers.append(
                subprocess.Popen(
                    [
                        str(bindir / WORKER_COMMAND[0]),
                        *WORKER_COMMAND[1:],
                        "-n",
                        f"bench{n}@%h",
                        "--loglevel",
                        "WARNING",
                    ],
                    cwd=ROOT,
                    env=env,
                )
            )
        gunicorn = subprocess.Popen(
            [
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
                "--backlog",
                "4096",
                "--keep-alive",
                "300",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env={**env, "DB_POOL_MAX_SIZE": str(GUNICORN_THREADS)},
        )
        _wait_ready(f"{base}/readyz", gunicorn)
        print(
            f"gunicorn gthread {GUNICORN_WORKERS} workers x {GUNICORN_THREADS} threads; "
            f"webhooks worker: {WORKER_PROCESSES} x {' '.join(WORKER_COMMAND)}; {os.cpu_count()} CPUs",
            flush=True,
        )
        # Warm-up: the pipeline works end to end before any clock starts.
        warm = asyncio.run(_open_loop(base, fixture.seller_key, fixture.deals, 10, 2, "warm-up"))
        got = _wait_for(str(out_path), 0, {(d, v) for d, v, *_ in warm.done}, "/listener")
        if len(got) < len(warm.done) or warm.errors:
            raise SystemExit("warm-up writes were not all delivered")
        report: list[str] = []

        def say(line: str) -> None:
            print(line, flush=True)
            report.append(line)

        # (a) fan-out
        for attempt in range(3):
            offset = out_path.stat().st_size
            load = os.getloadavg()[0]
            writes = asyncio.run(_open_loop(base, fixture.fan_seller_key, [fixture.fan_deal], 1, 1, f"fan {attempt}"))
            ((deal, version, updated, _, _),) = writes.done
            wanted = {(deal, version)}
            arrived: list[float] = []
            deadline = time.monotonic() + WAIT_SECONDS
            position = offset
            while len(arrived) < FANOUT and time.monotonic() < deadline:
                records, position = _receipts(str(out_path), position)
                arrived += [
                    r["received"]
                    for r in records
                    if r["path"].startswith("/fan/") and (r["id"], r["version"]) in wanted
                ]
                time.sleep(0.05)
            last = max(arrived) - updated if arrived else float("nan")
            say(
                f"(a) fan-out run {attempt + 1}: {len(arrived)} of {FANOUT} endpoints in {last:.2f} s from commit "
                f"to last receipt = {len(arrived) / last:.0f} deliveries/s; first after "
                f"{(min(arrived) - updated) * 1000:.0f} ms (load average {load:.2f})"
            )

        # (b) open loop
        for rate in RATES:
            offset = out_path.stat().st_size
            load = os.getloadavg()[0]
            writes = asyncio.run(_open_loop(base, fixture.seller_key, fixture.deals, rate, RATE_SECONDS, f"r{rate}"))
            got = _wait_for(str(out_path), offset, {(d, v) for d, v, *_ in writes.done}, "/listener")
            lat = _latencies(writes, got)
            answered = [a - s for *_, s, a in writes.done]
            span = max(a for *_, a in writes.done) - min(s for *_, s, _ in writes.done)
            say(
                f"(b) {rate:.0f} writes/s offered for {RATE_SECONDS:.0f} s: API took {len(writes.done) / span:.1f}/s "
                f"(answer p50 {_ms(answered, 50)}, p99 {_ms(answered, 99)}, {writes.errors} errors); "
                f"commit-to-receipt p50 {_ms(lat, 50)}, p95 {_ms(lat, 95)}, p99 {_ms(lat, 99)} "
                f"({len(got)} of {len(writes.done)} received; load average {load:.2f})"
            )

        # (c) closed loop
        offset = out_path.stat().st_size
        load = os.getloadavg()[0]
        started = time.time()
        writes = asyncio.run(_closed_loop(base, fixture.seller_key, fixture.deals, CLOSED_CONNECTIONS, CLOSED_SECONDS))
        stopped = time.time()
        got = _wait_for(str(out_path), offset, {(d, v) for d, v, *_ in writes.done}, "/listener")
        during = sum(1 for t in got.values() if t <= stopped)
        last = max(got.values()) if got else stopped
        say(
            f"(c) closed loop, {CLOSED_CONNECTIONS} connections for {CLOSED_SECONDS:.0f} s: "
            f"{len(writes.done) / (stopped - started):.1f} writes/s ({writes.errors} errors), "
            f"{during / (stopped - started):.1f} deliveries/s during the load = "
            f"{during / max(1, len(writes.done)):.2f} x writes, drained {max(0.0, last - stopped):.2f} s after it "
            f"({len(got)} of {len(writes.done)} received; load average {load:.2f})"
        )

        # (d) a hanging receiver beside a healthy one
        results = {}
        for hanging in (False, True):
            offset = out_path.stat().st_size
            load = os.getloadavg()[0]

            async def both(hang: bool = hanging) -> Writes:
                jobs = [_open_loop(base, fixture.seller_key, fixture.deals, HANG_RATE, HANG_SECONDS, f"d{hang}")]
                if hang:
                    jobs.append(_open_loop(base, fixture.hang_seller_key, fixture.hang_deals, 10, HANG_SECONDS, "h"))
                return (await asyncio.gather(*jobs))[0]

            writes = asyncio.run(both())
            got = _wait_for(str(out_path), offset, {(d, v) for d, v, *_ in writes.done}, "/listener")
            lat = _latencies(writes, got)
            results[hanging] = _percentile(lat, 99)
            say(
                f"(d) healthy endpoint at {HANG_RATE:.0f} writes/s "
                f"{'while another account s endpoint hangs (10 writes/s to it)' if hanging else 'alone'}: "
                f"p50 {_ms(lat, 50)}, p99 {_ms(lat, 99)} ({len(got)} of {len(writes.done)} received; "
                f"load average {load:.2f})"
            )
        say(f"(d) p99 with a hanging endpoint / without: {results[True] / results[False]:.2f}x")
    finally:
        for process in (gunicorn, *workers, receiver):
            _stop(process)

    print("\nsummary")
    for line in report:
        print("  " + line)


if __name__ == "__main__":
    random.seed(1)
    main()
