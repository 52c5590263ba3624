from datetime import timedelta

PERIODIC_TASKS = {
    "entitlements: expire grants": {
        "task": "entitlements.tasks.grants_expire",
        "schedule": timedelta(minutes=1),
        "description": "Marks grants past expires_at as expired and emits access_grant.expired. "
        "Reads deny expired grants on their own, so a late run never extends access.",
    },
    "entitlements: notify expiring grants": {
        "task": "entitlements.tasks.grants_notify_expiring",
        "schedule": timedelta(minutes=1),
        "description": "Emits access_grant.expiring once per grant, GRANT_EXPIRING_NOTICE hours before it ends.",
    },
}
