"""What happens in a conversation: one function a verb.

Consumers and tasks call these; they validate (`check_*`), change state inside
a transaction, and push the resulting events after commit.
"""

import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatbot import realtime
from chatbot.agents import presence
from chatbot.conversations.models import Conversation, Message, Visitor, hash_token
from chatbot.nlu.models import Feedback, Intent, Response

log = logging.getLogger(__name__)

FALLBACK_TEXT = "Sorry, I didn't quite get that. Could you rephrase it, or would you like to talk to a person?"
HANDOFF_TEXT = "I'm handing you over to a member of our support team. Someone will reply here shortly."
NO_AGENT_TEXT = "Our support team is offline right now. Leave your email address and we'll get back to you."
WAITING_TEXT = "A member of our support team will be with you shortly."
OFFLINE_THANKS_TEXT = "Thanks! We have your email address and will get back to you as soon as we can."
TALK_TO_HUMAN = "Talk to a human"


class ProtocolError(Exception):
    """A frame the server refuses; `code` is one of the codes of docs/protocol.md."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BotPrediction:
    """What the intent model said about one visitor message (plain data, from `inference`)."""

    intent: str
    confidence: float
    out_of_scope: bool
    model_version_id: int | None


# --- Sessions ---------------------------------------------------------------


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
    if visitor is None:
        return None
    conversations = visitor.conversations.all()
    if conversation_id is not None:
        try:
            return conversations.get(pk=uuid.UUID(str(conversation_id)))
        except (ValueError, Conversation.DoesNotExist):
            return None
    latest = conversations.exclude(status=Conversation.Status.CLOSED).order_by("-created_at").first()
    return latest or Conversation.objects.create(visitor=visitor)


# --- Visitor messages -------------------------------------------------------


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


def check_rate_limit(visitor_id: int, client_msg_id: uuid.UUID | None = None) -> None:
    """At most RATE_LIMIT_MESSAGES in RATE_LIMIT_WINDOW_S per visitor (fixed window, shared cache).
    A client_msg_id counts once: a resend of one that passed (stored or not, e.g. the
    database failed after the check) is not counted again."""
    window = settings.RATE_LIMIT_WINDOW_S
    counted = f"ratelimit:counted:{visitor_id}:{client_msg_id}"
    if client_msg_id is not None and cache.get(counted):
        return
    key = f"ratelimit:visitor:{visitor_id}:{int(time.time() // window)}"
    cache.add(key, 0, timeout=window * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window * 2)
        count = 1
    if count > settings.RATE_LIMIT_MESSAGES:
        raise ProtocolError("rate_limited", "Too many messages; wait a few seconds and try again.")
    if client_msg_id is not None:
        cache.set(counted, 1, timeout=window * 2)


def append_message(conversation: Conversation, **fields) -> Message:
    """Add a message with the next seq. The caller holds the conversation row lock."""
    conversation.last_seq += 1
    message = Message.objects.create(conversation=conversation, seq=conversation.last_seq, **fields)
    conversation.save(update_fields=["last_seq", "updated_at"])
    return message


def lock_conversation(conversation_id) -> Conversation:
    return Conversation.objects.select_for_update().get(pk=conversation_id)


def record_visitor_message(conversation_id, text: str, client_msg_id: uuid.UUID) -> tuple[Message, bool]:
    """Store the visitor's message (once per client_msg_id) and, after commit,
    hand it to the inference task. Returns (message, created)."""
    from chatbot.conversations.tasks import reply_to_visitor_message

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
            # the sweeper (chatbot/ops/recovery.py) enqueues it once it is back.
            transaction.on_commit(lambda: reply_to_visitor_message.delay(message.pk), robust=True)
            realtime.push(realtime.AGENTS_GROUP, queue_event(conversation))
            realtime.push(realtime.conversation_group(conversation.pk), message_event(message))
    except IntegrityError:
        # The same client_msg_id raced in on another socket: one of them won.
        existing = Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
        if existing is None:
            raise
        return existing, False
    return message, True


def receive_visitor_message(
    conversation_id, visitor_id: int, text: str, client_msg_id: uuid.UUID
) -> tuple[Message, bool, str]:
    """A user_message frame, in one trip to the database thread: a resend gets
    the stored message back; a new one is rate-limited, then stored.
    Returns (message, created, the conversation's status after it)."""
    existing = Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
    if existing is not None:
        return existing, False, ""
    check_rate_limit(visitor_id, client_msg_id)
    message, created = record_visitor_message(conversation_id, text, client_msg_id)
    return message, created, message.conversation.status


def messages_after(conversation: Conversation, last_seq: int) -> list[dict]:
    messages = conversation.messages.filter(seq__gt=last_seq, internal=False).select_related("author")
    return [message_frame(m) for m in messages.order_by("seq")]


# --- The bot's answer -------------------------------------------------------


def _pick_response(intent: Intent, seq: int) -> Response | None:
    responses = list(intent.responses.all())
    return responses[seq % len(responses)] if responses else None


def answer_visitor_message(message_id: int, prediction: BotPrediction) -> Message | None:
    """Store the prediction on the visitor's message and, when the bot is in
    charge, its reply. Safe to run twice: the reply is unique per message."""
    with transaction.atomic():
        message = Message.objects.select_related("conversation").get(pk=message_id)
        conversation = lock_conversation(message.conversation_id)
        if Message.objects.filter(reply_to_id=message_id).exists():
            return None
        Message.objects.filter(pk=message_id).update(
            intent=prediction.intent,
            confidence=prediction.confidence,
            out_of_scope=prediction.out_of_scope,
            model_version_id=prediction.model_version_id,
        )
        if conversation.status in (Conversation.Status.WITH_AGENT, Conversation.Status.CLOSED):
            # A person is in charge: the bot stays silent, agents see the prediction.
            _push_prediction(message_id, conversation, prediction)
            return None

        intent = Intent.objects.filter(name=prediction.intent).first()
        confident = (
            intent is not None
            and not prediction.out_of_scope
            and prediction.confidence >= settings.INTENT_CONFIDENCE_THRESHOLD
        )
        reply_fields = {
            "sender": Message.Sender.BOT,
            "reply_to_id": message_id,
            "intent": prediction.intent,
            "confidence": prediction.confidence,
            "out_of_scope": prediction.out_of_scope,
            "model_version_id": prediction.model_version_id,
        }
        hand_off_reason = ""
        if conversation.status == Conversation.Status.BOT and _previous_answer_disliked(message):
            text, quick_replies = HANDOFF_TEXT, []
            hand_off_reason = "thumbs_down"
            conversation.fallback_streak = 0
        elif confident and intent.handoff:
            text, quick_replies = HANDOFF_TEXT, []
            hand_off_reason = "requested"
            conversation.fallback_streak = 0
        elif confident:
            response = _pick_response(intent, message.seq)
            text = response.text if response else FALLBACK_TEXT
            quick_replies = response.quick_replies if response else []
            conversation.fallback_streak = 0
        else:
            conversation.fallback_streak += 1
            Feedback.objects.get_or_create(
                message_id=message_id,
                source=Feedback.Source.FALLBACK,
                defaults={"predicted_intent": prediction.intent, "confidence": prediction.confidence},
            )
            if conversation.status == Conversation.Status.WAITING_FOR_AGENT:
                text, quick_replies = _waiting_text(conversation), []
            elif conversation.fallback_streak >= settings.HANDOFF_AFTER_FALLBACKS:
                text, quick_replies = HANDOFF_TEXT, []
                hand_off_reason = "fallback"
            else:
                text, quick_replies = FALLBACK_TEXT, [TALK_TO_HUMAN]
        conversation.save(update_fields=["fallback_streak", "updated_at"])
        handing_off = bool(hand_off_reason) and conversation.status == Conversation.Status.BOT
        offline = handing_off and not presence.any_agent_online()
        if offline:
            text = NO_AGENT_TEXT
        reply = append_message(conversation, text=text, quick_replies=quick_replies, **reply_fields)
        realtime.push(realtime.conversation_group(conversation.pk), message_event(reply))
        if handing_off:
            _hand_off_locked(conversation, hand_off_reason, offline=offline)
        else:
            realtime.push(realtime.AGENTS_GROUP, queue_event(conversation))
        _push_prediction(message_id, conversation, prediction)
    return reply


# --- Handoff ----------------------------------------------------------------


HANDOFF_REASONS = {
    "requested": "the visitor asked for a person",
    "fallback": "the bot could not answer",
    "thumbs_down": "the visitor disliked an answer",
    "agent": "an agent took over",
}


def change_status(conversation: Conversation, status: str, note: str) -> None:
    """Every change of hands: saved, a system message in the transcript, and
    events for the visitor and the agents. The caller holds the row lock."""
    conversation.status = status
    conversation.save(
        update_fields=[
            "status",
            "assigned_agent",
            "fallback_streak",
            "offline_message",
            "waiting_since",
            "handoff_reason",
            "closed_at",
            "updated_at",
        ]
    )
    system = append_message(conversation, sender=Message.Sender.SYSTEM, text=note)
    realtime.push(realtime.conversation_group(conversation.pk), message_event(system))
    realtime.push(realtime.conversation_group(conversation.pk), status_event(conversation))
    realtime.push(realtime.AGENTS_GROUP, queue_event(conversation))


def _hand_off_locked(conversation: Conversation, reason: str, *, offline: bool) -> None:
    conversation.waiting_since = timezone.now()
    conversation.handoff_reason = reason
    conversation.offline_message = offline
    note = f"Handed off to a person: {HANDOFF_REASONS.get(reason, reason)}."
    if offline:
        note += " No agent is online; waiting as an offline message."
    change_status(conversation, Conversation.Status.WAITING_FOR_AGENT, note)


def hand_off(conversation_id, reason: str) -> Conversation:
    """Put a bot conversation in the agents' queue. No-op when a person already has it.
    With no agent online the visitor is asked for an email address instead."""
    with transaction.atomic():
        conversation = lock_conversation(conversation_id)
        if conversation.status == Conversation.Status.BOT:
            offline = not presence.any_agent_online()
            _hand_off_locked(conversation, reason, offline=offline)
            bot = append_message(
                conversation, sender=Message.Sender.BOT, text=NO_AGENT_TEXT if offline else HANDOFF_TEXT
            )
            realtime.push(realtime.conversation_group(conversation.pk), message_event(bot))
    return conversation


def _previous_answer_disliked(message: Message) -> bool:
    """Did the visitor give a thumbs-down to the last thing said to them before `message`?
    (A system message in between, such as a hand-back to the bot, starts afresh.)"""
    previous = (
        Message.objects.filter(conversation_id=message.conversation_id, seq__lt=message.seq, internal=False)
        .exclude(sender=Message.Sender.VISITOR)
        .order_by("-seq")
        .first()
    )
    if previous is None or previous.sender != Message.Sender.BOT:
        return False
    # Thumbs are stored on the visitor message the answer replied to (see record_thumbs).
    return Feedback.objects.filter(
        message_id=previous.reply_to_id or previous.pk, source=Feedback.Source.THUMBS_DOWN
    ).exists()


def _waiting_text(conversation: Conversation) -> str:
    if not conversation.offline_message:
        return WAITING_TEXT
    has_email = Visitor.objects.filter(pk=conversation.visitor_id).exclude(email="").exists()
    return OFFLINE_THANKS_TEXT if has_email else NO_AGENT_TEXT


def _push_prediction(message_id: int, conversation: Conversation, prediction: BotPrediction) -> None:
    """Agents watching the conversation see the predicted intent of each visitor message."""
    realtime.push(
        realtime.AGENTS_GROUP,
        {
            "type": "message.prediction",
            "conversation_id": str(conversation.pk),
            "message_id": message_id,
            "intent": prediction.intent,
            "confidence": prediction.confidence,
            "out_of_scope": prediction.out_of_scope,
        },
    )


# --- Visitor feedback -------------------------------------------------------


def record_thumbs(conversation: Conversation, message_id: object, value: object) -> Feedback:
    if value not in ("up", "down"):
        raise ProtocolError("invalid_feedback", 'value must be "up" or "down".')
    try:
        message = conversation.messages.get(pk=int(message_id), sender=Message.Sender.BOT)
    except (ValueError, TypeError, Message.DoesNotExist):
        raise ProtocolError("unknown_message", "No bot message with that id in this conversation.") from None
    source = Feedback.Source.THUMBS_UP if value == "up" else Feedback.Source.THUMBS_DOWN
    other = Feedback.Source.THUMBS_DOWN if value == "up" else Feedback.Source.THUMBS_UP
    # The bot's answer is judged; the visitor message it answered is what gets relabelled.
    target = message.reply_to or message
    with transaction.atomic():
        Feedback.objects.filter(message=target, source=other).delete()
        feedback, _ = Feedback.objects.get_or_create(
            message=target,
            source=source,
            defaults={"predicted_intent": message.intent, "confidence": message.confidence},
        )
    return feedback


def record_rating(conversation: Conversation, score: object) -> None:
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise ProtocolError("invalid_rating", "score must be a whole number from 1 to 5.")
    Conversation.objects.filter(pk=conversation.pk).update(csat=score)


def identify(conversation: Conversation, name: object, email: object) -> None:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    fields = {}
    if name is not None:
        if not isinstance(name, str) or len(name) > 200:
            raise ProtocolError("invalid_identity", "name must be text of at most 200 characters.")
        fields["name"] = name.strip()
    if email is not None:
        try:
            validate_email(email)
        except (ValidationError, TypeError):
            raise ProtocolError("invalid_identity", "That email address does not look right.") from None
        fields["email"] = email
    if fields:
        Visitor.objects.filter(pk=conversation.visitor_id).update(**fields)


# --- Frames and events ------------------------------------------------------


def message_frame(message: Message) -> dict:
    frame = {
        "message_id": message.pk,
        "seq": message.seq,
        "sender": message.sender,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }
    if message.sender == Message.Sender.VISITOR and message.client_msg_id:
        frame["client_msg_id"] = str(message.client_msg_id)
    if message.sender == Message.Sender.BOT:
        frame.update(
            intent=message.intent,
            confidence=message.confidence,
            quick_replies=message.quick_replies,
            reply_to=message.reply_to_id,
        )
    if message.sender == Message.Sender.AGENT and message.author is not None:
        frame["agent_name"] = message.author.get_full_name() or message.author.get_username()
    return frame


def message_event(message: Message) -> dict:
    return {
        "type": "chat.message",
        "conversation_id": str(message.conversation_id),
        "internal": message.internal,
        "message": message_frame(message),
    }


def status_event(conversation: Conversation) -> dict:
    return {"type": "chat.status", "conversation_id": str(conversation.pk), "status": conversation.status}


def queue_event(conversation: Conversation) -> dict:
    return {"type": "queue.update", "conversation_id": str(conversation.pk), "status": conversation.status}
