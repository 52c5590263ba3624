from datetime import timedelta

PERIODIC_TASKS = {
    "webhooks: sweep due deliveries": {
        "task": "webhooks.tasks.webhooks_sweep",
        "schedule": timedelta(seconds=5),
        "queue": "webhooks",
        "description": "Fans out events whose fast path was lost and re-enqueues every due webhook delivery.",
    },
}
