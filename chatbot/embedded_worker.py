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
    if settings.CELERY_BEAT_SCHEDULE:
        # The scheduler of the nightly retraining, as a thread: it sends to the same
        # in-process broker this worker consumes.
        Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
        EmbeddedService(app, schedule_filename=settings.CELERY_BEAT_SCHEDULE_FILENAME, thread=True).start()
    from chatbot.nlu import serving

    threading.Thread(target=serving.warm_up, name="intent-model-warm-up", daemon=True).start()
    from chatbot.knowledge import serving as knowledge_serving

    threading.Thread(target=knowledge_serving.warm_up, name="knowledge-index-warm-up", daemon=True).start()
    log.info("embedded Celery worker started on queues %s", ", ".join(q.value for q in Queue))
    return worker
