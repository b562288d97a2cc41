"""A Celery worker inside the server process, for the setup with nothing installed.

It consumes the in-process broker on every queue, so a visitor's message takes
the same path as in production (consumer -> task -> model -> channel layer),
only without a network hop.
"""

import logging
import threading
from pathlib import Path

from celery.beat import EmbeddedService
from celery.worker import WorkController
from django.conf import settings

from chatbot.celery import Queue, app

log = logging.getLogger(__name__)


_lock_files: list = []


def hold_scheduler_lock() -> bool:
    """One scheduler per schedule file: a second server started on the same one
    (this host) runs none. The lock goes with the process."""
    import fcntl

    path = Path(settings.CELERY_BEAT_SCHEDULE_FILENAME + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        log.warning(
            "another server runs the scheduler on %s; this one runs none", settings.CELERY_BEAT_SCHEDULE_FILENAME
        )
        return False
    _lock_files.append(handle)
    return True


def start() -> WorkController:
    worker = WorkController(
        app=app,
        hostname="embedded@localhost",
        pool_cls="threads",
        concurrency=2,
        queues=[q.value for q in Queue],
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel=logging.INFO,
    )
    thread = threading.Thread(target=worker.start, name="embedded-celery-worker", daemon=True)
    thread.start()
    if settings.CELERY_BEAT_SCHEDULE and hold_scheduler_lock():
        # The scheduler (nightly retraining, the sweeper of unanswered messages), as
        # a thread: it sends to the same in-process broker this worker consumes.
        EmbeddedService(app, schedule_filename=settings.CELERY_BEAT_SCHEDULE_FILENAME, thread=True).start()
    # Its heartbeat thread loads the models first (chatbot/ops/heartbeat.py).
    log.info("embedded Celery worker started on queues %s", ", ".join(q.value for q in Queue))
    return worker
