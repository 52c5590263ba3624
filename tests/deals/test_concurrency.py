"""Concurrent writers over real HTTP: row locks and versions never lose a write."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.deals.support import deal_body

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20


def _run_together(fn, count=THREADS):
    barrier = threading.Barrier(count)

    def start(n):
        barrier.wait(timeout=10)
        return fn(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


@pytest.fixture
def deal_url(live_server, seller_client):
    headers = {"Authorization": f"Api-Key {seller_client.key}"}
    response = requests.post(
        f"{live_server.url}/api/v1/deals", json=deal_body(discount=None), headers=headers, timeout=10
    )
    assert response.status_code == 201, response.text
    return f"{live_server.url}/api/v1/deals/{response.json()['id']}", headers


def test_blind_concurrent_patches_all_apply_with_distinct_versions(deal_url):
    url, headers = deal_url

    def rename(n):
        with requests.Session() as session:
            response = session.patch(url, json={"name": f"Writer {n}"}, headers=headers, timeout=30)
            return response.status_code, response.json()["version"]

    results = _run_together(rename)

    assert Counter(status for status, _ in results) == {200: THREADS}
    assert sorted(version for _, version in results) == list(range(2, THREADS + 2))
    final = requests.get(url, headers=headers, timeout=10).json()
    assert final["version"] == 1 + THREADS
    assert final["name"] == f"Writer {next(n for n, (_, v) in enumerate(results) if v == final['version'])}"


def test_read_modify_write_with_if_match_loses_no_update(deal_url):
    """Each writer appends its own item; a stale If-Match gets 412 and the writer re-reads and retries."""
    url, headers = deal_url
    conflicts = Counter()

    def append_item(n):
        with requests.Session() as session:
            for _ in range(200):  # bounded: every round some writer wins
                current = session.get(url, headers=headers, timeout=30)
                items = [*current.json()["items"], {"id": f"w{n}", "name": f"Writer {n}", "price": "1.00"}]
                response = session.patch(
                    url, json={"items": items}, headers={**headers, "If-Match": current.headers["ETag"]}, timeout=30
                )
                if response.status_code == 200:
                    return response.json()["version"]
                assert response.status_code == 412, response.text
                assert response.json()["current_version"] > current.json()["version"]
                conflicts[n] += 1
            raise AssertionError(f"writer {n} never got its update in")

    versions = _run_together(append_item)

    final = requests.get(url, headers=headers, timeout=10).json()
    successes = len(versions)
    assert successes == THREADS
    assert final["version"] == 1 + successes
    assert sorted(versions) == list(range(2, THREADS + 2))
    assert {item["id"] for item in final["items"]} == {"sku-1", "sku-2"} | {f"w{n}" for n in range(THREADS)}
    assert final["total_price"] == "120.00"  # 100 + 20 x 1.00
    assert sum(conflicts.values()) > 0  # the writers really did collide
