"""Concurrent webhook sending inside one worker process.

Claimed deliveries are started (``services.deliveries_start``) and their requests
run on a pool of WEBHOOKS_SEND_CONCURRENCY threads that share one HTTP session
per receiver host, so connections are reused. At most WEBHOOKS_ENDPOINT_CONCURRENCY
requests per endpoint are in flight at once; up to WEBHOOKS_ENDPOINT_BACKLOG more
wait in memory for a free slot (without holding a thread), and the rest are
given back to the database, due again after WEBHOOKS_DEFER_SECONDS. A receiver that hangs therefore
holds its own share of threads, never the others'.

Results are written by one thread per process in batches (``services.attempts_record``).
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
        self._results: queue.SimpleQueue[tuple[Outgoing, http.PostResult]] = queue.SimpleQueue()

    # --- process-wide state, made again in a forked child ------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pid != os.getpid() or self._executor is None:
                self._pid = os.getpid()
                self._inflight, self._queued = {}, {}
                self._results = queue.SimpleQueue()
                self._executor = ThreadPoolExecutor(
                    max_workers=int(settings.WEBHOOKS_SEND_CONCURRENCY), thread_name_prefix="webhook-send"
                )
                threading.Thread(target=self._record_loop, name="webhook-record", daemon=True).start()
            return self._executor

    def in_flight(self) -> int:
        """Deliveries this process has started or holds in memory and not yet recorded."""
        with self._lock:
            return sum(self._inflight.values()) + sum(len(q) for q in self._queued.values())

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
        cap = int(settings.WEBHOOKS_ENDPOINT_CONCURRENCY)
        go: list[Claim] = []
        defer: list[Claim] = []
        with self._lock:
            for claim in claims:
                endpoint_id = endpoints.get(claim[0])
                if endpoint_id is None:
                    continue  # deleted meanwhile
                if self._inflight.get(endpoint_id, 0) < cap:
                    self._inflight[endpoint_id] = self._inflight.get(endpoint_id, 0) + 1
                    go.append(claim)
                else:
                    waiting = self._queued.setdefault(endpoint_id, deque())
                    if len(waiting) < int(settings.WEBHOOKS_ENDPOINT_BACKLOG):
                        waiting.append(claim)
                    else:
                        defer.append(claim)
        if defer:
            services.deliveries_defer(claims=defer, seconds=float(settings.WEBHOOKS_DEFER_SECONDS))
        self._start(pool, go, endpoints)

    def _start(self, pool: ThreadPoolExecutor, claims: list[Claim], endpoints: dict[int, int]) -> None:
        while claims:
            try:
                outgoing = services.deliveries_start(claims=claims)
            except Exception:
                logger.exception(
                    "Could not start %s webhook deliveries; their claims lapse and they are retried.", len(claims)
                )
                outgoing = []
            started = {o.delivery_id for o in outgoing}
            for item in outgoing:
                pool.submit(self._post, item)
            # Claims that turned out stale free their slot for the next waiting delivery.
            claims, endpoints = self._release([endpoints[c[0]] for c in claims if c[0] not in started])

    def _release(self, endpoint_ids: list[int]) -> tuple[list[Claim], dict[int, int]]:
        cap = int(settings.WEBHOOKS_ENDPOINT_CONCURRENCY)
        nxt: list[Claim] = []
        endpoints: dict[int, int] = {}
        with self._lock:
            for endpoint_id in endpoint_ids:
                self._inflight[endpoint_id] = self._inflight.get(endpoint_id, 1) - 1
                waiting = self._queued.get(endpoint_id)
                while waiting and self._inflight[endpoint_id] < cap:
                    claim = waiting.popleft()
                    nxt.append(claim)
                    endpoints[claim[0]] = endpoint_id
                    self._inflight[endpoint_id] += 1
                if waiting is not None and not waiting:
                    del self._queued[endpoint_id]
                if self._inflight[endpoint_id] <= 0:
                    del self._inflight[endpoint_id]
        return nxt, endpoints

    def _post(self, outgoing: Outgoing) -> None:
        try:
            result = services.outgoing_post(outgoing)
        except Exception as exc:  # http.post never raises for network trouble; anything else is logged
            logger.exception("Webhook request for delivery %s failed", outgoing.delivery_id)
            result = http.PostResult(None, {}, b"", 0, f"{type(exc).__name__}: {exc}"[:500])
        self._results.put((outgoing, result))

    def _record_loop(self) -> None:
        results = self._results
        while True:
            batch = [results.get()]
            while len(batch) < RECORD_BATCH:
                try:
                    batch.append(results.get_nowait())
                except queue.Empty:
                    break
            try:
                services.attempts_record(results=batch)
            except Exception:
                logger.exception(
                    "Could not record %s webhook attempts; their claims lapse and they are retried.", len(batch)
                )
            nxt, endpoints = self._release([outgoing.endpoint_id for outgoing, _ in batch])
            executor = self._executor
            if executor is not None:
                self._start(executor, nxt, endpoints)
            close_old_connections()

    # --- in the caller's thread ---------------------------------------------------------
    def _send_and_wait(self, claims: list[Claim]) -> None:
        outgoing = services.deliveries_start(claims=claims)
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
