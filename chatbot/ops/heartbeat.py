"""Worker heartbeats: every Celery worker (a process, or the one embedded in
the server) writes every WORKER_HEARTBEAT_S that it is alive and which queues
it consumes; /healthz counts the live workers of each queue. A worker beats
only once it has run the warm-ups its queues register (the inference queue
loads its models), so /healthz never counts a worker that cannot answer yet.

With Redis the beats live in one hash per queue (so every server process sees
every host's workers); without it, in this process.
"""

import logging
import threading
import time

from celery.signals import worker_init, worker_shutdown
from django import db
from django.conf import settings

log = logging.getLogger(__name__)

_local: dict[str, dict[str, float]] = {}
_warm_ups: dict[str, list] = {}
_local_lock = threading.Lock()
_client = None


def _key(queue: str) -> str:
    return f"chatbot:workers:{queue}"


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=10
        )
    return _client


def warm_up_before_beating(queue: str, warm_up) -> None:
    """Run `warm_up()` in every worker of `queue` before its first heartbeat."""
    if warm_up not in _warm_ups.setdefault(queue, []):
        _warm_ups[queue].append(warm_up)


def stale_after_s() -> float:
    return 3 * settings.WORKER_HEARTBEAT_S


def beat(hostname: str, queues: list[str], now: float | None = None) -> None:
    now = time.time() if now is None else now
    if settings.EMBEDDED:
        with _local_lock:
            for queue in queues:
                _local.setdefault(queue, {})[hostname] = now
        return
    pipe = _redis().pipeline()
    for queue in queues:
        pipe.hset(_key(queue), hostname, now)
        pipe.expire(_key(queue), int(stale_after_s()) + 60)
    pipe.execute()


def forget(hostname: str, queues: list[str]) -> None:
    if settings.EMBEDDED:
        with _local_lock:
            for queue in queues:
                _local.get(queue, {}).pop(hostname, None)
        return
    pipe = _redis().pipeline()
    for queue in queues:
        pipe.hdel(_key(queue), hostname)
    pipe.execute()


def live_workers(queue: str, now: float | None = None) -> list[str]:
    """Hostnames of the workers of `queue` whose last beat is recent."""
    now = time.time() if now is None else now
    if settings.EMBEDDED:
        with _local_lock:
            beats = dict(_local.get(queue, {}))
    else:
        beats = {k.decode(): float(v) for k, v in _redis().hgetall(_key(queue)).items()}
    return sorted(host for host, at in beats.items() if now - float(at) <= stale_after_s())


class Heartbeat:
    """A daemon thread beating for one worker until it shuts down."""

    def __init__(self, hostname: str, queues: list[str]) -> None:
        self.hostname, self.queues = hostname, queues
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{hostname}", daemon=True)

    def start(self) -> "Heartbeat":
        self.thread.start()
        return self

    def _run(self) -> None:
        for warm_up in [w for queue in self.queues for w in _warm_ups.get(queue, [])]:
            try:
                warm_up()
            except Exception:  # a broken model must not hide a live worker; its tasks report it
                log.exception("warm-up %s failed", getattr(warm_up, "__qualname__", warm_up))
        # The warm-ups read their versions from the database on this thread: give its
        # connection back, or each worker start keeps one of the pool's for good.
        db.connections.close_all()
        while not self.stopped.is_set():
            try:
                beat(self.hostname, self.queues)
            except Exception as exc:  # Redis down: the next beat tries again
                log.warning("worker heartbeat failed: %s", exc)
            self.stopped.wait(settings.WORKER_HEARTBEAT_S)

    def stop(self) -> None:
        self.stopped.set()
        try:
            forget(self.hostname, self.queues)
        except Exception as exc:
            log.warning("could not remove the worker heartbeat: %s", exc)


_heartbeats: dict[int, Heartbeat] = {}


@worker_init.connect
def _start_beating(sender=None, **kwargs) -> None:
    if sender is None:
        return
    queues = sorted(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    _heartbeats[id(sender)] = Heartbeat(sender.hostname, queues).start()


@worker_shutdown.connect
def _stop_beating(sender=None, **kwargs) -> None:
    heartbeat = _heartbeats.pop(id(sender), None)
    if heartbeat is not None:
        heartbeat.stop()
