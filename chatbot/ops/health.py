"""A check /healthz adds to its database, broker, channel layer and model checks:
a live worker on every queue (the conversations app adds: no visitor message
left waiting, chatbot/conversations/recovery.py)."""

from chatbot.celery import Queue
from chatbot.ops import heartbeat


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


CHECKS = (("workers", workers),)
