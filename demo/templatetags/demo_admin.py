from django import template
from django.conf import settings

from demo.scheduler import scheduler_running

register = template.Library()


@register.simple_tag
def schedules_notice() -> str:
    """Where the periodic schedules run, for the embedded demo; empty for a deployment with its own beat."""
    if not settings.EMBEDDED:
        return ""
    if scheduler_running():
        return (
            "Embedded demo: Periodic tasks run in this process, on the timings under Periodic tasks "
            "(webhook retries, trial expiry, price syncs, market-cap backfill)."
        )
    return (
        "Embedded demo without a scheduler: Periodic tasks do NOT run in this process, so webhook retries, "
        "trial expiry notices, price syncs and the market-cap backfill wait. Start the demo with `make run`."
    )
