from datetime import timedelta

PERIODIC_TASKS = {
    "core.purge-idempotency-records": {
        "task": "core.tasks.idempotency_records_purge",
        "schedule": timedelta(hours=1),
        "description": "Forget Idempotency-Key responses older than IDEMPOTENCY_KEY_TTL.",
    },
}
