"""Hot reads against their floor: the product and a minimal WSGI app doing the same reads.

``python -m bench reads`` (or ``make bench``) with DATABASE_URL pointing at a benchmark
database (created and migrated here) and REDIS_URL at a Redis database it may use.

1. Seeds, idempotently: the catalog with market caps, a year of hourly BTC (8,760 points),
   a quant with a 1h grant, and a buyer authorised by 5 sellers with 250 deals of 3 items.
2. Starts two gunicorns with the same settings (``-k gthread``, BENCH_READS_WORKERS x
   BENCH_READS_THREADS, default 2 x 4) on the same database: the product (``config.wsgi``,
   rate limits raised through API_RATE_LIMIT / API_ANON_RATE_LIMIT) and the floor
   (``bench._floor``: psycopg, its pool and orjson, the API-key lookup and SHA-512 check,
   the same tables, the same JSON).
3. Checks that both answer every read with the same bytes, then drives each read with wrk
   (``apt-get install wrk``) at 64 and 256 connections for BENCH_READS_SECONDS (default 8)
   after a warm-up, product and floor one after the other, and prints req/s and the ratio.
   Before those runs, while no backlog is left from them, it measures each read's latency
   with one connection (``wrk --latency``, BENCH_READS_LATENCY_SECONDS, default 5, after the
   warm-up), product and floor, and prints both p50s and whether the year of hourly prices
   in JSON is served within its target (p50 at most 20 ms).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests

from bench.prices import SECRET_KEY, _database_create, _free_port

ROOT = Path(__file__).resolve().parent.parent
WORKERS = os.environ.get("BENCH_READS_WORKERS", "2")
THREADS = os.environ.get("BENCH_READS_THREADS", "4")
SECONDS = int(os.environ.get("BENCH_READS_SECONDS", "8"))
WARMUP_SECONDS = int(os.environ.get("BENCH_READS_WARMUP_SECONDS", "2"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_READS_CONNECTIONS", "64,256").split(",")]
ONLY = set(filter(None, os.environ.get("BENCH_READS_ONLY", "").split(",")))
LATENCY_SECONDS = int(os.environ.get("BENCH_READS_LATENCY_SECONDS", "5"))
YEAR_JSON = "year of hourly prices, JSON"
YEAR_JSON_P50_TARGET_MS = 20.0
RAISED_RATE = "1000000000/min"
DEALS = 250
SELLERS = 5


def _setup() -> dict[str, str]:
    """Migrate and seed; returns the quant's and the buyer's API keys and one deal id."""
    from bench.prices import _setup as prices_setup

    quant_key = prices_setup()  # migrates, seeds the catalog, stores the year, entitles a quant

    from accounts import services as account_services
    from catalog.models import Dataset
    from deals.models import BuyerAuthorization, Deal, DealItem
    from deals.services import final_price_compute
    from pricing.models import MarketCapSnapshot

    for dataset in Dataset.objects.all():
        for day in range(30):
            MarketCapSnapshot.objects.get_or_create(
                dataset=dataset,
                date=date(2025, 12, 1) + timedelta(days=day),
                defaults={
                    "market_cap_usd": Decimal("1834567890123.45") + day,
                    "price_usd": Decimal("93429.23") + day,
                    "supply": Decimal("19800000.5"),
                    "source": "synthetic",
                    "source_timestamp": datetime(2025, 12, 1, 20, tzinfo=UTC) + timedelta(days=day),
                },
            )
    buyer, _ = account_services.account_get_or_create(ref="bench-reads-buyer", role="buyer", name="Reads Buyer")
    sellers = [
        account_services.account_get_or_create(ref=f"bench-reads-seller-{n}", role="seller", name=f"Seller {n}")[0]
        for n in range(SELLERS)
    ]
    for seller in sellers:
        BuyerAuthorization.objects.get_or_create(seller=seller, buyer=buyer)
    if Deal.objects.filter(seller__in=sellers).count() != DEALS:
        Deal.objects.filter(seller__in=sellers).delete()
        base = datetime(2025, 6, 1, tzinfo=UTC)
        for index in range(DEALS):
            currency = ("GBP", "USD", "EUR", "JPY")[index % 4]
            prices = [Decimal(10 + index % 90) + Decimal(n) / 4 for n in range(3)]
            total = sum(prices, Decimal(0))
            discount_type, amount = (("", None), ("flat", Decimal("1.5")), ("percentage", Decimal("12.5")))[index % 3]
            deal = Deal.objects.create(
                public_id=uuid.UUID(int=0xBE000000_0000_4000_8000_000000000000 + index),
                seller=sellers[index % SELLERS],
                name=f"Bench deal {index}",
                currency=currency,
                total_price=total,
                discount_type=discount_type,
                discount_amount=amount,
                final_price=final_price_compute(
                    total=total, discount_type=discount_type, discount_amount=amount, currency=currency
                ),
                created_at=base + timedelta(minutes=index),
                updated_at=base + timedelta(minutes=index, seconds=30),
            )
            DealItem.objects.bulk_create(
                DealItem(deal=deal, position=n, ref=f"sku-{n}", name=f"Item {n}", price=price)
                for n, price in enumerate(prices)
            )
    _, buyer_key = account_services.api_key_create(account=buyer, name="bench-reads")
    one_deal = Deal.objects.filter(seller=sellers[0]).order_by("id").values_list("public_id", flat=True).first()
    return {"quant": quant_key, "buyer": buyer_key, "deal": str(one_deal)}


@dataclass
class Read:
    name: str
    path: str
    key: str | None


def _reads(setup: dict[str, str]) -> list[Read]:
    year = "frequency=1h&start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z&page_size=10000"
    reads = [
        Read("datasets list (anonymous)", "/api/v1/datasets", None),
        Read("deals list, page_size 200", "/api/v1/deals?page_size=200", setup["buyer"]),
        Read("deals list, page_size 20", "/api/v1/deals?page_size=20", setup["buyer"]),
        Read("one deal", f"/api/v1/deals/{setup['deal']}", setup["buyer"]),
        Read("entitlements", "/api/v1/entitlements", setup["quant"]),
        Read(YEAR_JSON, f"/api/v1/datasets/BTC/prices?{year}", setup["quant"]),
        Read("year of hourly prices, CSV", f"/api/v1/datasets/BTC/prices?{year}&format=csv", setup["quant"]),
    ]
    return [read for read in reads if not ONLY or any(word in read.name for word in ONLY)]


def _serve(app: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        WORKERS,
        "--threads",
        THREADS,
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def _wait(base: str, path: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(base + path, timeout=5)
            return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"{base} did not start")
        time.sleep(0.1)


def _settle(url: str, key: str | None) -> None:
    """Wait until the server has drained the previous run: one request answered within 2 s."""
    headers = {"Authorization": f"Api-Key {key}"} if key else {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            requests.get(url, headers=headers, timeout=30)
        except requests.RequestException:
            continue
        if time.monotonic() - started < 2:
            return


def _wrk(url: str, key: str | None, connections: int, seconds: int) -> tuple[float, int]:
    """Requests per second and errors (socket errors and non-2xx answers)."""
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    if key:
        command += ["-H", f"Authorization: Api-Key {key}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rate or float(rate.group(1)) == 0:
        print(out, file=sys.stderr, flush=True)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return (float(rate.group(1)) if rate else 0.0), errors


def _p50(url: str, key: str | None, seconds: int) -> float:
    """Median latency in milliseconds of one connection sending one request after another."""
    command = ["wrk", "-t", "1", "-c", "1", "-d", f"{seconds}s", "--timeout", "10s", "--latency"]
    if key:
        command += ["-H", f"Authorization: Api-Key {key}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    median = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not median:
        print(out, file=sys.stderr, flush=True)
        return float("nan")
    return float(median.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[median.group(2)]


def main() -> None:
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise SystemExit("DATABASE_URL is required (make bench sets it to the _bench database).")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: apt-get install wrk (Debian/Ubuntu) or brew install wrk.")
    _database_create(database_url)
    setup = _setup()
    reads = _reads(setup)

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", SECRET_KEY),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "API_RATE_LIMIT": RAISED_RATE,
        "API_ANON_RATE_LIMIT": RAISED_RATE,
        "DB_POOL_MAX_SIZE": THREADS,
    }
    ports = {"product": _free_port(), "floor": _free_port()}
    servers = {
        "product": _serve("config.wsgi", ports["product"], env),
        "floor": _serve("bench._floor:application", ports["floor"], env),
    }
    try:
        bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name, server in servers.items():
            _wait(bases[name], "/api/v1/datasets", server)
        for read in reads:
            headers = {"Authorization": f"Api-Key {read.key}"} if read.key else {}
            bodies = {}
            for name, base in bases.items():
                response = requests.get(base + read.path, headers=headers, timeout=30)
                assert response.status_code == 200, (name, read.name, response.status_code, response.text[:300])
                bodies[name] = response.content.replace(base.encode(), b"BASE")
            if bodies["product"] != bodies["floor"]:
                raise SystemExit(f"{read.name}: the floor's answer differs from the product's")

        load = os.getloadavg()
        print(
            f"gunicorn -k gthread -w {WORKERS} --threads {THREADS} for both; wrk -t2, {SECONDS} s per run "
            f"after {WARMUP_SECONDS} s warm-up; load average {load[0]:.2f} at start; "
            "every answer checked byte-identical between product and floor",
            flush=True,
        )
        print(f"latency, one connection, {LATENCY_SECONDS} s per run after {WARMUP_SECONDS} s warm-up:")
        print("| read | product p50 | floor p50 |")
        print("|---|---|---|", flush=True)
        year_p50: float | None = None
        for read in reads:
            medians: dict[str, float] = {}
            for name, base in bases.items():
                _settle(base + read.path, read.key)
                _p50(base + read.path, read.key, WARMUP_SECONDS)
                medians[name] = _p50(base + read.path, read.key, LATENCY_SECONDS)
            print(f"| {read.name} | {medians['product']:.1f} ms | {medians['floor']:.1f} ms |", flush=True)
            if read.name == YEAR_JSON:
                year_p50 = medians["product"]
        if year_p50 is not None:
            met = "met" if year_p50 <= YEAR_JSON_P50_TARGET_MS else "not met"
            print(f"{YEAR_JSON}: p50 {year_p50:.1f} ms, target at most {YEAR_JSON_P50_TARGET_MS:.0f} ms: {met}\n")
        print("| read | connections | product req/s | floor req/s | product / floor | errors (product/floor) |")
        print("|---|---|---|---|---|---|", flush=True)
        for read in reads:
            for connections in CONNECTIONS:
                rates: dict[str, float] = {}
                errors: dict[str, int] = {}
                for name, base in bases.items():
                    _settle(base + read.path, read.key)
                    _wrk(base + read.path, read.key, connections, WARMUP_SECONDS)
                    rates[name], errors[name] = _wrk(base + read.path, read.key, connections, SECONDS)
                ratio = rates["product"] / rates["floor"] if rates["floor"] else float("nan")
                print(
                    f"| {read.name} | {connections} | {rates['product']:,.0f} | {rates['floor']:,.0f} | "
                    f"{ratio:.2f} | {errors['product']}/{errors['floor']} |",
                    flush=True,
                )
        print(f"load average {os.getloadavg()[0]:.2f} at end", flush=True)
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
