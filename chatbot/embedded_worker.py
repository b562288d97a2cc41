"""A Celery worker inside the server process, for the setup with nothing installed.

It consumes the in-process broker on every queue, so a visitor's message takes
the same path as in production (consumer -> task -> model -> channel layer),
only without a network hop.
"""

import logging
import threading

from celery.worker import WorkController

from chatbot.celery import Queue, app

log = logging.getLogger(__name__)


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
    from chatbot.nlu import serving

    threading.Thread(target=serving.warm_up, name="intent-model-warm-up", daemon=True).start()
    log.info("embedded Celery worker started on queues %s", ", ".join(q.value for q in Queue))
    return worker
