"""The beat task that makes outcomes final: thin, idempotent."""

from celery import shared_task

from chatbot.analytics import outcomes
from chatbot.celery import Queue


@shared_task(queue=Queue.DEFAULT)
def finalise_outcomes() -> int:
    """Every few minutes (celery beat): store the outcome of each conversation that
    closed or went idle past ANALYTICS_IDLE_WINDOW_H, and refresh late ratings."""
    return outcomes.finalise_due()
