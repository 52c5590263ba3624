"""Concurrent webhook sending inside one worker process.

Claimed deliveries are started (``services.deliveries_start``) and their requests
run on a pool of WEBHOOKS_SEND_CONCURRENCY threads that share one HTTP session
per receiver host, so connections are reused. At most WEBHOOKS_ENDPOINT_CONCURRENCY
requests per endpoint are in flight at once; up to WEBHOOKS_ENDPOINT_BACKLOG more
wait in memory for a free slot (without holding a thread), and the rest are
given back to the database, due again after WEBHOOKS_DEFER. A receiver that hangs therefore
holds its own share of threads, never the others'.

Results are written by one thread per process in batches (``services.attempts_record``);
deliveries that waited for a slot are started by another (``services.deliveries_start``)
as soon as a slot frees, never behind a batch being recorded.
The task that handed the claims over returns at once: the database holds the
state (leases, due times), so a process that dies loses only latency.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.db import close_old_connections

from webhooks import http, services
from webhooks.services import Claim, Outgoing

logger = logging.getLogger(__name__)


RECORD_BATCH = 500


class Sender:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._executor: ThreadPoolExecutor | None = None
        self._inflight: dict[int, int] = {}
        self._queued: dict[int, deque[Claim]] = {}
        self._to_start: list[tuple[Claim, int]] = []
        self._unrecorded = 0
        self._results: queue.SimpleQueue[tuple[Outgoing, http.PostResult] | None] = queue.SimpleQueue()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()

    # --- process-wide state, made again in a forked child ------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pid != os.getpid() or self._executor is None:
                self._pid = os.getpid()
                self._inflight, self._queued, self._to_start, self._unrecorded = {}, {}, [], 0
                self._results, self._wake = queue.SimpleQueue(), queue.SimpleQueue()
                self._executor = ThreadPoolExecutor(
                    max_workers=int(settings.WEBHOOKS_SEND_CONCURRENCY), thread_name_prefix="webhook-send"
                )
                threading.Thread(target=self._loop, name="webhook-record", daemon=True).start()
                threading.Thread(target=self._starter, name="webhook-start", daemon=True).start()
            return self._executor

    def in_flight(self) -> int:
        """Deliveries this process holds (waiting, on the wire or answered) and has not recorded yet."""
        with self._lock:
            return self._unrecorded

    def _admit_locked(self, endpoint_id: int, claim: Claim) -> bool | None:
        """With the lock held: take a slot of the endpoint's share (True), or wait in its
        backlog for one (False), or neither when the backlog is full (None: defer it)."""
        if self._inflight.get(endpoint_id, 0) < int(settings.WEBHOOKS_ENDPOINT_CONCURRENCY):
            self._inflight[endpoint_id] = self._inflight.get(endpoint_id, 0) + 1
            self._unrecorded += 1
            return True
        waiting = self._queued.setdefault(endpoint_id, deque())
        if len(waiting) < int(settings.WEBHOOKS_ENDPOINT_BACKLOG):
            waiting.append(claim)
            self._unrecorded += 1
            return False
        return None

    # --- handing claims over ---------------------------------------------------------
    def send(self, claims: Iterable[Claim], *, wait: bool = False) -> None:
        """Send claimed deliveries. With ``wait`` every attempt is made and recorded on this
        thread's database connection before returning (tasks run in the caller's process)."""
        claims = list(claims)
        if not claims:
            return
        if wait:
            self._send_and_wait(claims)
            return
        pool = self._pool()
        endpoints = services.claims_endpoints(claims=claims)
        go: list[tuple[Claim, int]] = []
        defer: list[Claim] = []
        with self._lock:
            for claim in claims:
                endpoint_id = endpoints.get(claim[0])
                if endpoint_id is None:
                    continue  # deleted meanwhile
                admitted = self._admit_locked(endpoint_id, claim)
                if admitted:
                    go.append((claim, endpoint_id))
                elif admitted is None:
                    defer.append(claim)
        if defer:
            services.deliveries_defer(claims=defer, seconds=settings.WEBHOOKS_DEFER.total_seconds())
        self._start(pool, go)

    def send_started(self, outgoing: Iterable[Outgoing], *, wait: bool = False) -> None:
        """Send deliveries already started (the fast path's fan-out). Those over their endpoint's
        share wait like claims, and are started again when a slot frees."""
        outgoing = list(outgoing)
        if not outgoing:
            return
        if wait:
            self._post_and_record(outgoing)
            return
        pool = self._pool()
        now: list[Outgoing] = []
        defer: list[Claim] = []
        with self._lock:
            for item in outgoing:
                claim = (item.delivery_id, item.lease_token)
                admitted = self._admit_locked(item.endpoint_id, claim)
                if admitted:
                    now.append(item)
                elif admitted is None:
                    defer.append(claim)
        if defer:
            services.deliveries_defer(claims=defer, seconds=settings.WEBHOOKS_DEFER.total_seconds())
        refused: list[int] = []
        for item in now:
            try:
                pool.submit(self._post, item)
            except RuntimeError:  # the process is shutting down: the claim lapses, the sweeper sends it
                refused.append(item.endpoint_id)
        if refused:
            with self._lock:
                self._unrecorded -= len(refused)
            self._start(pool, self._free(refused))

    def _start(self, pool: ThreadPoolExecutor, go: list[tuple[Claim, int]]) -> None:
        while go:
            try:
                outgoing = services.deliveries_start(claims=[claim for claim, _ in go])
            except Exception:
                logger.exception(
                    "Could not start %s webhook deliveries; their claims lapse and they are retried.", len(go)
                )
                outgoing = []
            started = {o.delivery_id for o in outgoing}
            for item in outgoing:
                try:
                    pool.submit(self._post, item)
                except RuntimeError:  # the process is shutting down: the claim lapses, the sweeper sends it
                    started.discard(item.delivery_id)
            # Claims that turned out stale (or could not be sent) free their slot for the next waiting one.
            stale = [endpoint_id for claim, endpoint_id in go if claim[0] not in started]
            with self._lock:
                self._unrecorded -= len(stale)
            go = self._free(stale)

    def _free(self, endpoint_ids: list[int]) -> list[tuple[Claim, int]]:
        """Give back one slot per endpoint id; return the waiting deliveries that take them."""
        cap = int(settings.WEBHOOKS_ENDPOINT_CONCURRENCY)
        nxt: list[tuple[Claim, int]] = []
        with self._lock:
            for endpoint_id in endpoint_ids:
                self._inflight[endpoint_id] = self._inflight.get(endpoint_id, 1) - 1
                waiting = self._queued.get(endpoint_id)
                while waiting and self._inflight[endpoint_id] < cap:
                    nxt.append((waiting.popleft(), endpoint_id))
                    self._inflight[endpoint_id] += 1
                if waiting is not None and not waiting:
                    del self._queued[endpoint_id]
                if self._inflight[endpoint_id] <= 0:
                    del self._inflight[endpoint_id]
        return nxt

    def _post(self, outgoing: Outgoing) -> None:
        try:
            result = services.outgoing_post(outgoing)
        except Exception as exc:  # http.post never raises for network trouble; anything else is logged
            logger.exception("Webhook request for delivery %s failed", outgoing.delivery_id)
            result = http.PostResult(None, {}, b"", 0, f"{type(exc).__name__}: {exc}"[:500])
        # The slot is free as soon as the receiver answered; the next waiting delivery is started
        # by the starter thread at once, while this answer is being recorded.
        nxt = self._free([outgoing.endpoint_id])
        if nxt:
            with self._lock:
                self._to_start.extend(nxt)
            self._wake.put(None)
        self._results.put((outgoing, result))

    def _starter(self) -> None:
        """Start, in batches, the deliveries that waited for their endpoint's slot, on this thread's connection."""
        wake = self._wake
        while True:
            wake.get()
            while True:
                try:
                    wake.get_nowait()
                except queue.Empty:
                    break
            with self._lock:
                go, self._to_start = self._to_start, []
            executor = self._executor
            if go and executor is not None:
                self._start(executor, go)
            close_old_connections()

    def _loop(self) -> None:
        """Record answers, in batches, on this thread's connection."""
        results = self._results
        while True:
            first = results.get()
            batch = [first] if first is not None else []
            while len(batch) < RECORD_BATCH:
                try:
                    item = results.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            if batch:
                try:
                    services.attempts_record(results=batch)
                except Exception:
                    logger.exception(
                        "Could not record %s webhook attempts; their claims lapse and they are retried.", len(batch)
                    )
                with self._lock:
                    self._unrecorded -= len(batch)
            close_old_connections()

    # --- in the caller's thread ---------------------------------------------------------
    def _send_and_wait(self, claims: list[Claim]) -> None:
        self._post_and_record(services.deliveries_start(claims=claims))

    def _post_and_record(self, outgoing: list[Outgoing]) -> None:
        if not outgoing:
            return
        cap = int(settings.WEBHOOKS_ENDPOINT_CONCURRENCY)
        slots: dict[int, threading.Semaphore] = {o.endpoint_id: threading.Semaphore(cap) for o in outgoing}

        def post(item: Outgoing) -> tuple[Outgoing, http.PostResult]:
            with slots[item.endpoint_id]:
                return item, services.outgoing_post(item)

        if len(outgoing) == 1:
            results = [post(outgoing[0])]
        else:
            futures = [self._pool().submit(post, item) for item in outgoing]
            wait(futures)
            results = [future.result() for future in futures]
        services.attempts_record(results=results)


sender = Sender()


def in_caller(request: object) -> bool:
    """Did this task run in the caller's own process (embedded mode, or called as a function)?"""
    return bool(getattr(request, "is_eager", False) or getattr(request, "called_directly", False))
