"""The events feed never skips a committed event, whatever order the writing transactions commit in.

Real transactions on real PostgreSQL: a second thread holds a transaction open while the
test commits newer events beside it.
"""

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from tests.conftest import AccountClient
from tests.support import wait_until
from webhooks import services
from webhooks.models import Event

from .conftest import EVENT

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE = 30.0
"""Seconds a wait may take: the feed also waits for write transactions of other sessions on the server."""


class OpenTransaction:
    """Publishes one event in a transaction on its own thread and commits only when told to."""

    def __init__(self, account: Any) -> None:
        self.account = account
        self.published = threading.Event()
        self.release = threading.Event()
        self.event: Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.event = services.event_publish(event_type=EVENT, data={"n": "late"}, recipients=[self.account])
                self.published.set()
                if not self.release.wait(timeout=DEADLINE):
                    raise TimeoutError("never told to commit")
        except BaseException as exc:  # handed to the test thread by commit()
            self.error = exc
        finally:
            self.published.set()
            connection.close()  # this thread's own connection

    def start(self) -> Event:
        self.thread.start()
        assert self.published.wait(timeout=DEADLINE)
        assert self.error is None, self.error
        assert self.event is not None
        return self.event

    def commit(self) -> None:
        self.release.set()
        self.thread.join(timeout=DEADLINE)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@pytest.fixture
def open_transaction() -> Iterator[Callable[[Any], OpenTransaction]]:
    started: list[OpenTransaction] = []

    def _open(account: Any) -> OpenTransaction:
        holder = OpenTransaction(account)
        started.append(holder)
        return holder

    yield _open
    for holder in started:  # a failed test must not leave a transaction blocking the flush
        holder.release.set()
        holder.thread.join(timeout=DEADLINE)


def _poll(client: AccountClient, cursor: str | None, seen: list[str], until: Callable[[list[str]], bool]) -> str | None:
    """Poll like a client: follow `next`, keep the cursor, until ``seen`` satisfies ``until`` or the deadline."""
    position = [cursor]

    def read_once() -> tuple[str | None] | None:
        response = client.get("/api/v1/events", {"after": position[0]} if position[0] else {})
        assert response.status_code == 200, response.content
        body = response.json()
        seen.extend(e["id"] for e in body["results"])
        position[0] = body["cursor"]
        return (position[0],) if until(seen) else None

    (cursor,) = wait_until(read_once, DEADLINE, lambda: f"feed still shows {seen}", interval=0.02)
    return cursor


def test_an_event_that_commits_after_a_newer_one_is_not_skipped(quant_client, publish, open_transaction):
    first = publish(quant_client.account, n="first")
    seen: list[str] = []
    cursor = _poll(quant_client, None, seen, lambda ids: first.public_id in ids)
    assert seen == [first.public_id]

    late = open_transaction(quant_client.account)
    a = late.start()  # inserted first, committed last
    b = publish(quant_client.account, n="early")  # inserted after A, committed at once
    assert b.pk > a.pk
    assert b.xid > a.xid  # B's transaction started writing after A's

    # B is committed, but A's transaction is older and still open: the feed stops before both.
    during = quant_client.get("/api/v1/events", {"after": cursor}).json()
    assert during == {"results": [], "next": None, "cursor": cursor}
    assert [e["id"] for e in quant_client.get("/api/v1/events").json()["results"]] == [first.public_id]

    late.commit()
    # The client that polled during the window keeps its cursor and sees both, once each, A first.
    _poll(quant_client, cursor, seen, lambda ids: b.public_id in ids)
    assert seen == [first.public_id, a.public_id, b.public_id]
    from_start = quant_client.get("/api/v1/events").json()["results"]
    assert [e["id"] for e in from_start] == [first.public_id, a.public_id, b.public_id]


def test_events_of_one_transaction_come_back_in_insertion_order_across_pages(quant_client, publish):
    account = quant_client.account
    with transaction.atomic():
        batch = [publish(account, n=n) for n in range(5)]
    later = publish(account, n="later")
    assert len({e.xid for e in batch}) == 1

    seen: list[str] = []
    _poll(quant_client, None, seen, lambda ids: later.public_id in ids)
    assert seen == [e.public_id for e in [*batch, later]]

    # Pages of two split the transaction's events: the cursor continues inside the same transaction.
    pages, url = [], "/api/v1/events?page_size=2"
    while url:
        body = quant_client.get(url).json()
        pages.append([e["id"] for e in body["results"]])
        url = body["next"]
    assert pages == [
        [batch[0].public_id, batch[1].public_id],
        [batch[2].public_id, batch[3].public_id],
        [
            batch[4].public_id,
            later.public_id,
        ],
    ]
