"""A check /healthz adds to its database, broker, channel layer and model checks:
a live worker on every queue (the conversations app adds: no visitor message
left waiting, chatbot/conversations/recovery.py), and who may read the details."""

import ipaddress

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


def may_see_details(request) -> bool:
    """Staff, or a request from this host (the container's health check, an operator's
    curl on the box). Behind the proxy REMOTE_ADDR is the client's, as uvicorn takes it
    from X-Forwarded-For, so the proxy's own loopback address does not count."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
