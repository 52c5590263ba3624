"""Price history benchmark: a year of hourly BTC (8,760 points) in one request, JSON and CSV.

Creates and migrates the database named by DATABASE_URL (``make bench`` points it at
``..._bench``), stores the year, creates a quant with a 1h grant, starts gunicorn on
``config.wsgi`` (127.0.0.1, an ephemeral port), warms up, then times N sequential
requests per format with ``page_size=10000``. Run: ``python -m bench prices``
(``BENCH_PRICES_REQUESTS`` sets N, default 200).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
SECRET_KEY = "bench-secret-key-not-for-production-0123456789"


def _database_create(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup() -> str:
    """Migrate, store the year, and return an API key of an entitled quant."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", SECRET_KEY)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from accounts import services as account_services
    from catalog.models import Dataset
    from demo.seed import catalog_seed
    from entitlements.selectors import grant_in_force
    from entitlements.services import grant_create
    from pricing.models import PricePoint
    from pricing.services import prices_store
    from pricing.sources import SyntheticClient

    catalog_seed()
    btc = Dataset.objects.prefetch_related("frequencies").get(symbol="BTC")
    stored = PricePoint.objects.filter(dataset=btc, frequency="1h", timestamp__gte=START, timestamp__lt=END).count()
    if stored != 8760:
        client = SyntheticClient(now=END)
        points = client.history("bitcoin", interval="h1", start=START, end=END)
        prices_store(dataset=btc, frequency="1h", points=points, source=client.name, covered=[(START, END)])
    account, _ = account_services.account_get_or_create(ref="bench-quant", role="quant", name="Bench Quant")
    if grant_in_force(account_id=account.pk, dataset_id=btc.pk, frequency="1h") is None:
        grant_create(account=account, dataset=btc, frequency="1h", actor=None, note="benchmark")
    _, key = account_services.api_key_create(account=account, name="bench")
    return key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _time(session: requests.Session, url: str, headers: dict[str, str], n: int, check: str) -> tuple[list[float], int]:
    samples = []
    size = 0
    for _ in range(n):
        started = time.perf_counter()
        response = session.get(url, headers=headers, timeout=30)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        samples.append(elapsed * 1000)
        size = len(response.content)
    assert check in response.text
    return samples, size


def main() -> None:
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise SystemExit("DATABASE_URL is required (make bench sets it to the _bench database).")
    n = int(os.environ.get("BENCH_PRICES_REQUESTS", "200"))
    _database_create(database_url)
    key = _setup()

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", SECRET_KEY),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    workers = os.environ.get("BENCH_GUNICORN_WORKERS", "2")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            workers,
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.1)

        url = (
            f"{base}/api/v1/datasets/BTC/prices?frequency=1h&start=2025-01-01T00:00:00Z"
            "&end=2026-01-01T00:00:00Z&page_size=10000"
        )
        auth = {"Authorization": f"Api-Key {key}"}
        session = requests.Session()
        first = session.get(url, headers=auth, timeout=30).json()
        assert first["count"] == 8760 and first["next"] is None, first.get("detail")
        for _ in range(20):
            session.get(url, headers=auth, timeout=30)
            session.get(url + "&format=csv", headers=auth, timeout=30)

        print(f"{n} sequential requests per format, 8,760 hourly points each, gunicorn {workers} sync workers")
        one_point = url.replace("page_size=10000", "page_size=1")
        for label, target, check in (
            ("JSON", url, '"count":8760,'),
            ("CSV (?format=csv)", url + "&format=csv", "2025-12-31T23:00:00Z"),
            ("JSON, 1 point", one_point, '"count":1,'),
        ):
            samples, size = _time(session, target, auth, n, check)
            print(
                f"{label:18} p50 {_percentile(samples, 50):6.1f} ms  p95 {_percentile(samples, 95):6.1f} ms  "
                f"p99 {_percentile(samples, 99):6.1f} ms  mean {statistics.fmean(samples):6.1f} ms  "
                f"payload {size:,} bytes",
                flush=True,
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
