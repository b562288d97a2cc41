"""The sweeper behind "acked means answered": visitor messages that were stored
(and acknowledged) but have no bot decision a few seconds later are enqueued
again. The reply task is idempotent, so a message that was only slow is at
worst predicted twice and answered once.

A message loses its task when Redis was unreachable between commit and publish,
when the worker holding it died, or when the task failed on a database restart
after its retries.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from chatbot.conversations.models import Message
from chatbot.ops import health

log = logging.getLogger(__name__)


def unanswered_messages() -> QuerySet:
    """Visitor messages with no bot decision: no prediction stored and no reply.
    (A message in a conversation a person handles gets a prediction, not a reply.)"""
    return Message.objects.filter(sender=Message.Sender.VISITOR, confidence__isnull=True, bot_reply__isnull=True)


def oldest_unanswered_age_s(now=None) -> float:
    """Seconds the oldest recent unanswered visitor message has waited (0 for none)."""
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.REPLY_RECOVERY_MAX_AGE_S)
    oldest = (
        unanswered_messages().filter(created_at__gte=since).order_by("created_at").values_list("created_at", flat=True)
    ).first()
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


def requeue_unanswered(now=None, limit: int = 500) -> list[int]:
    """Enqueue the reply task again for each message waiting longer than
    REPLY_RECOVERY_AFTER_S; returns their ids. A message is enqueued again only
    once its age has doubled since the last time (at 10, 20, 40 s ...): while no
    worker answers (one loading its model after a restart), the queue must not
    fill with copies of the same backlog, each a prediction when a worker is back."""
    from chatbot.conversations.tasks import reply_to_visitor_message

    now = now or timezone.now()
    waiting = unanswered_messages().filter(
        created_at__lte=now - timedelta(seconds=settings.REPLY_RECOVERY_AFTER_S),
        created_at__gte=now - timedelta(seconds=settings.REPLY_RECOVERY_MAX_AGE_S),
    )
    requeued = []
    for message_id, created_at in waiting.order_by("created_at").values_list("pk", "created_at")[:limit]:
        age_s = (now - created_at).total_seconds()
        if not cache.add(f"recovery:requeued:{message_id}", 1, timeout=max(1, round(age_s))):
            continue
        reply_to_visitor_message.delay(message_id)
        requeued.append(message_id)
    if requeued:
        log.warning("re-enqueued %d unanswered visitor message(s): %s", len(requeued), requeued[:20])
    return requeued


def unanswered() -> str:
    """Age of the oldest visitor message still waiting for the bot; fails past the threshold."""
    age = oldest_unanswered_age_s()
    detail = f"oldest unanswered visitor message: {age:.1f} s"
    if age > settings.HEALTH_UNANSWERED_MAX_AGE_S:
        raise health.Unhealthy(f"{detail} (over {settings.HEALTH_UNANSWERED_MAX_AGE_S:g} s)")
    return detail
