"""Visitor tokens expire VISITOR_TOKEN_TTL_DAYS after their last use; using one
renews it (at most one write an hour), so a returning customer keeps the chat."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from chatbot.conversations.models import Visitor

RENEW_AT_MOST_EVERY = timedelta(hours=1)


def token_is_current(visitor: Visitor, now=None) -> bool:
    """False when the visitor's token has expired; otherwise True, renewing it."""
    now = now or timezone.now()
    ttl = timedelta(days=settings.VISITOR_TOKEN_TTL_DAYS)
    expires = visitor.token_expires_at or (visitor.created_at + ttl)
    if expires <= now:
        return False
    if expires < now + ttl - RENEW_AT_MOST_EVERY:
        Visitor.objects.filter(pk=visitor.pk).update(token_expires_at=now + ttl)
    return True
