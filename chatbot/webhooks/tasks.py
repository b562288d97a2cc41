"""Webhook tasks: thin, take ids, safe to run twice."""

from celery import shared_task

from chatbot.celery import Queue
from chatbot.webhooks import services


@shared_task(queue=Queue.DEFAULT)
def deliver_webhook(delivery_id: int) -> None:
    delay = services.attempt(delivery_id)
    if delay is not None:
        deliver_webhook.apply_async((delivery_id,), countdown=delay)


@shared_task(queue=Queue.DEFAULT)
def retry_due_deliveries() -> None:
    services.retry_due()
