"""The one way writes hand work to Celery: after their transaction commits, by the task's dotted path.

Services name tasks by path instead of importing them, because task modules import
services; the path is resolved when the message is sent. A failed send never fails
the write: the rows the task would have worked on stay due in the database for
their sweeper, and after one failure the process stops trying for
``BROKER_BACKOFF_SECONDS``, so writes during a broker outage do not each wait for
a connection attempt.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

BROKER_BACKOFF_SECONDS = 2.0
"""After a failed send, how long this process stops trying and leaves new work to the sweepers."""

_broker_down_until = 0.0


def enqueue_on_commit(task_path: str, *args: Any) -> None:
    """When the current transaction commits (at once outside one), send the task at ``task_path``."""
    transaction.on_commit(lambda: enqueue(task_path, *args))


def enqueue(task_path: str, *args: Any) -> None:
    """Send the task at ``task_path`` now; if the broker is unreachable, log it and return."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.debug("Broker unreachable a moment ago; %s%r is left to its sweeper.", task_path, args)
        return
    try:
        import_string(task_path).apply_async(
            args=args,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        )
    except Exception:
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("Could not enqueue %s%r; the work stays due in the database.", task_path, args)


def broker_backoff_reset() -> None:
    """Forget a past failure, so the next send tries the broker again."""
    global _broker_down_until
    _broker_down_until = 0.0
