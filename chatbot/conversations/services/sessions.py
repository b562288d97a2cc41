"""A visitor's session: the token they hold and the conversation it opens."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from chatbot.conversations import tokens
from chatbot.conversations.models import Conversation, Message, Visitor, hash_token

DELETE_BATCH = 500


def start_session(*, page_url: str = "", user_agent: str = "") -> tuple[str, Conversation]:
    """A new visitor with a new conversation; returns the visitor's token (shown once)."""
    token = Visitor.new_token()
    with transaction.atomic():
        visitor = Visitor.objects.create(
            token_hash=hash_token(token), page_url=page_url[:2000], user_agent=user_agent[:500]
        )
        conversation = Conversation.objects.create(visitor=visitor)
    return token, conversation


def authenticate(token: object, conversation_id: object = None) -> Conversation | None:
    """The conversation a token may use, or None. Without an id: the visitor's
    latest open conversation, or a new one when all are closed."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    visitor = Visitor.objects.filter(token_hash=hash_token(token)).first()
    if visitor is None or not tokens.token_is_current(visitor):  # tokens expire unless used
        return None
    conversations = visitor.conversations.all()
    if conversation_id is not None:
        try:
            return conversations.get(pk=uuid.UUID(str(conversation_id)))
        except (ValueError, Conversation.DoesNotExist):
            return None
    latest = conversations.exclude(status=Conversation.Status.CLOSED).order_by("-created_at").first()
    return latest or Conversation.objects.create(visitor=visitor)


def unused_sessions(now=None):
    """Visitors who never had a message: made over UNUSED_SESSION_TTL_HOURS ago, token not
    used since, every conversation with the bot and empty, nothing known about them."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.UNUSED_SESSION_TTL_HOURS)
    # A use renews the token to now + TTL (tokens.token_is_current): renewed before the cutoff means unused since.
    renewed_before_cutoff = Q(token_expires_at__isnull=True) | Q(
        token_expires_at__lt=cutoff + timedelta(days=settings.VISITOR_TOKEN_TTL_DAYS)
    )
    any_message = Message.objects.filter(conversation__visitor=OuterRef("pk"))
    not_with_the_bot = Conversation.objects.filter(visitor=OuterRef("pk")).exclude(status=Conversation.Status.BOT)
    return (
        Visitor.objects.filter(
            renewed_before_cutoff,
            created_at__lt=cutoff,
            name="",
            email="",
            external_id="",
            api_attributes__isnull=True,  # an integration keeps attributes on it
        )
        .exclude(Exists(any_message))
        .exclude(Exists(not_with_the_bot))
    )


def delete_unused_sessions(now=None) -> int:
    """Delete the sessions (visitor, conversations) that never had a message; returns how many.

    Never one with a message: each batch locks its visitors' conversations (every
    message is appended under that lock) and checks again before deleting."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(unused_sessions(now).order_by("pk").values_list("pk", flat=True)[:DELETE_BATCH])
            if not ids:
                return deleted
            list(Conversation.objects.select_for_update().filter(visitor_id__in=ids).values_list("pk", flat=True))
            still_unused = unused_sessions(now).filter(pk__in=ids)
            batch = list(still_unused.values_list("pk", flat=True))
            Visitor.objects.filter(pk__in=batch).delete()
            deleted += len(batch)
            if not batch:
                return deleted  # they all gained a message meanwhile; the next run looks again
