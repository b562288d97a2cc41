"""Storing messages: the visitor's (checked, rate-limited, once per client_msg_id)
and everyone's next seq under the conversation's row lock."""

import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction

from chatbot import realtime
from chatbot.conversations import events
from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.services import limits
from chatbot.conversations.services.protocol import ProtocolError


def check_visitor_text(text: object) -> str:
    if not isinstance(text, str):
        raise ProtocolError("empty_text", "A message needs a text.")
    if not text.strip():
        raise ProtocolError("empty_text", "The message is empty.")
    if len(text) > settings.MAX_MESSAGE_CHARS:
        raise ProtocolError("text_too_long", f"A message can be at most {settings.MAX_MESSAGE_CHARS} characters long.")
    return text.strip()


def check_client_msg_id(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise ProtocolError("invalid_client_msg_id", "client_msg_id must be a UUID.") from None


def check_rate_limit(visitor_id: int, client_msg_id: uuid.UUID | None = None, client_host: str | None = None) -> None:
    """At most RATE_LIMIT_MESSAGES in RATE_LIMIT_WINDOW_S per visitor (fixed window, shared cache),
    and the address's budgets (WS_MESSAGE_RATE_PER_IP, WS_RATE_PER_IP) when it is given, all
    counted in one round trip. A client_msg_id counts once: a resend of one that passed
    (stored or not, e.g. the database failed after the check) is not counted again."""
    window = settings.RATE_LIMIT_WINDOW_S
    counted = f"ratelimit:counted:{visitor_id}:{client_msg_id}"
    if client_msg_id is not None and cache.get(counted):
        return
    counters = [("visitor-message", str(visitor_id), f"{settings.RATE_LIMIT_MESSAGES}/{window}s")]
    if client_host is not None:
        counters += limits.message_counters(client_host)
    visitor, *address = limits.count(*counters)
    for usage in address:
        if usage.over:
            raise limits.RateLimited(limits.ADDRESS_MESSAGES_REFUSED, usage.retry_after, "user_message")
    if visitor.over:
        raise limits.RateLimited(
            "Too many messages; wait a few seconds and try again.", visitor.retry_after, "user_message"
        )
    if client_msg_id is not None:
        cache.set(counted, 1, timeout=window * 2)


def lock_conversation(conversation_id) -> Conversation:
    return Conversation.objects.select_for_update().get(pk=conversation_id)


def append_message(conversation: Conversation, also_save: tuple[str, ...] = (), **fields) -> Message:
    """Add a message with the next seq. The caller holds the conversation row lock;
    `also_save`: other fields of the conversation it changed, saved in the same update."""
    conversation.last_seq += 1
    message = Message.objects.create(conversation=conversation, seq=conversation.last_seq, **fields)
    conversation.save(update_fields=["last_seq", "updated_at", *also_save])
    return message


def record_visitor_message(
    conversation_id, text: str, client_msg_id: uuid.UUID, *, looked_up: bool = False
) -> tuple[Message, bool]:
    """Store the visitor's message (once per client_msg_id) and, after commit,
    hand it to the inference task. Returns (message, created). `looked_up`: the
    caller has just found no message with this client_msg_id (a race is still
    caught by the unique constraint)."""
    from chatbot.conversations.tasks import reply_to_visitor_message

    if not looked_up:
        existing = Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            conversation = lock_conversation(conversation_id)
            message = append_message(
                conversation, sender=Message.Sender.VISITOR, text=text, client_msg_id=client_msg_id
            )
            # robust: a broker that is down must not fail the stored, acked message;
            # the sweeper (chatbot/conversations/recovery.py) enqueues it once it is back.
            transaction.on_commit(lambda: reply_to_visitor_message.delay(message.pk), robust=True)
            realtime.push(realtime.AGENTS_GROUP, events.queue_event(conversation, visitor_message=True))
            realtime.push(realtime.conversation_group(conversation.pk), events.message_event(message))
    except IntegrityError:
        # The same client_msg_id raced in on another socket: one of them won.
        existing = Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
        if existing is None:
            raise
        return existing, False
    return message, True


def receive_visitor_message(
    conversation_id, visitor_id: int, text: str, client_msg_id: uuid.UUID, client_host: str | None = None
) -> tuple[Message, bool, str]:
    """A user_message frame, in one trip to the database thread: a resend gets
    the stored message back; a new one is rate-limited (per visitor and, given
    `client_host`, per address), then stored.
    Returns (message, created, the conversation's status after it)."""
    existing = Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
    if existing is not None:
        return existing, False, ""
    check_rate_limit(visitor_id, client_msg_id, client_host)
    message, created = record_visitor_message(conversation_id, text, client_msg_id, looked_up=True)
    return message, created, message.conversation.status


def messages_after(conversation: Conversation, last_seq: int) -> list[dict]:
    messages = conversation.messages.filter(seq__gt=last_seq, internal=False).select_related("author")
    return [events.message_frame(m) for m in messages.order_by("seq")]
