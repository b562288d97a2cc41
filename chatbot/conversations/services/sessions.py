"""A visitor's session: the token they hold and the conversation it opens."""

import uuid

from django.db import transaction

from chatbot.conversations import tokens
from chatbot.conversations.models import Conversation, Visitor, hash_token


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
