"""The daily retention run (celery beat, CELERY_BEAT_SCHEDULE["privacy-retention"])."""

from celery import shared_task

from chatbot.celery import Queue
from chatbot.privacy import services


@shared_task(queue=Queue.DEFAULT)
def apply_retention() -> dict:
    return services.apply_retention()
