"""Reply-model tasks: training on the training queue, suggestions on the inference queue."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from chatbot.celery import Queue
from chatbot.replies import services

log = logging.getLogger(__name__)


@shared_task(queue=Queue.TRAINING, time_limit=settings.CELERY_TRAINING_TIME_LIMIT)
def train_reply_model_version(version_id: int) -> None:
    services.train_version(version_id)


@shared_task(
    queue=Queue.INFERENCE,
    soft_time_limit=settings.REPLY_SUGGESTION_TIMEOUT_S + 1,
    time_limit=settings.REPLY_SUGGESTION_TIMEOUT_S + 10,
)
def suggest_replies(message_id: int) -> None:
    """Never fails: a late or failed suggestion is simply not shown."""
    try:
        services.suggest_for_message(message_id, timeout_s=settings.REPLY_SUGGESTION_TIMEOUT_S)
    except SoftTimeLimitExceeded:
        log.warning("suggestions for message %s ran out of time", message_id)
    except Exception:
        log.exception("suggestions for message %s failed", message_id)


def enqueue_suggestions(message_id: int) -> None:
    """Ask for suggestions when a person handles the conversation; a broker hiccup
    here must never touch the intent path that calls it."""
    try:
        if services.wants_suggestions(message_id):
            suggest_replies.delay(message_id)
    except Exception:
        log.exception("could not enqueue suggestions for message %s", message_id)
