"""The embedded demo's periodic work: django-celery-beat's own scheduler, run in a thread of the demo process.

Tasks run in-process (CELERY_TASK_ALWAYS_EAGER), so the beat thread executes each due
schedule itself, on the timings shown (and editable) in the admin under Periodic tasks.
"""

from __future__ import annotations

from typing import Any

_service: Any = None


def scheduler_start() -> None:
    """Start the in-process scheduler once; it lives as long as the process."""
    global _service
    if _service is not None:
        return
    import logging

    from celery import beat
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()  # register every task, so beat runs them here instead of queueing them
    for name in ("celery.beat", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)  # one line per run every 5 s drowns the console
    _service = beat.EmbeddedService(app, thread=True, scheduler_cls=settings.CELERY_BEAT_SCHEDULER, max_interval=5)
    _service.start()


def scheduler_running() -> bool:
    return _service is not None and _service.is_alive()
