"""Periodic tasks of operations (scheduled by celery beat, see settings)."""

from celery import shared_task

from chatbot.celery import Queue
from chatbot.ops import recovery


@shared_task(queue=Queue.DEFAULT, ignore_result=True)
def recover_unanswered_messages() -> int:
    return len(recovery.requeue_unanswered())
