"""Housekeeping of the API's own tables: thin, safe to run twice."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from chatbot.api.models import ApiCall, IdempotentRequest
from chatbot.celery import Queue

# A client retries within minutes; a day covers a retry after an outage.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


@shared_task(queue=Queue.DEFAULT)
def purge_old_records() -> None:
    now = timezone.now()
    IdempotentRequest.objects.filter(created_at__lt=now - IDEMPOTENCY_KEY_TTL).delete()
    ApiCall.objects.filter(created_at__lt=now - timedelta(days=settings.API_CALL_LOG_DAYS)).delete()
