"""Dashboard tasks: article suggestions on the inference queue, where the knowledge index lives."""

import logging

from celery import shared_task

from chatbot.agents import help_center
from chatbot.celery import Queue

log = logging.getLogger(__name__)


@shared_task(queue=Queue.INFERENCE, ignore_result=True, soft_time_limit=10, time_limit=20)
def suggest_articles(message_id: int) -> None:
    """Safe to run twice: it only reads and pushes."""
    help_center.suggest_articles(message_id)


def enqueue_article_suggestions(message_id: int) -> bool:
    """Ask for suggestions; a broker hiccup shows no suggestions, never an error page."""
    try:
        suggest_articles.delay(message_id)
    except Exception:
        log.exception("could not enqueue article suggestions for message %s", message_id)
        return False
    return True
