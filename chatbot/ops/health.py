"""The checks /healthz adds to its database, broker, channel layer and model
checks: a live worker on every queue, and no visitor message left waiting."""

from django.conf import settings

from chatbot.celery import Queue
from chatbot.ops import heartbeat, recovery


class Unhealthy(Exception):
    pass


def workers() -> str:
    """Live workers per queue, from their heartbeats; fails when a queue has none."""
    live = {queue.value: heartbeat.live_workers(queue.value) for queue in Queue}
    detail = ", ".join(f"{queue}: {len(hosts)}" for queue, hosts in live.items())
    missing = [queue for queue, hosts in live.items() if not hosts]
    if missing:
        raise Unhealthy(f"no live worker on {', '.join(missing)} ({detail})")
    return detail


def unanswered() -> str:
    """Age of the oldest visitor message still waiting for the bot; fails past the threshold."""
    age = recovery.oldest_unanswered_age_s()
    detail = f"oldest unanswered visitor message: {age:.1f} s"
    if age > settings.HEALTH_UNANSWERED_MAX_AGE_S:
        raise Unhealthy(f"{detail} (over {settings.HEALTH_UNANSWERED_MAX_AGE_S:g} s)")
    return detail


CHECKS = (("workers", workers), ("unanswered", unanswered))
