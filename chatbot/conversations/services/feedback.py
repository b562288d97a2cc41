"""What the visitor tells us about the service: thumbs on the bot's answers,
a rating of the conversation, and who they are."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal

from chatbot.conversations import identity
from chatbot.conversations.models import Conversation, Message, Visitor
from chatbot.conversations.services.messages import lock_conversation
from chatbot.conversations.services.offline import leave_email_locked, waits_offline
from chatbot.conversations.services.protocol import ProtocolError
from chatbot.nlu.models import Feedback

# Sent after a visitor's rating is stored (conversation_id, score): the rating is written
# with a conditional update, which sends no post_save. Webhooks listen to it.
rating_recorded = Signal()


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


def was_answered(conversation: Conversation) -> bool:
    """Did anyone answer the visitor: an agent's reply, or one of the bot's answers?"""
    return conversation.messages.filter(
        Q(sender=Message.Sender.AGENT, internal=False) | Q(sender=Message.Sender.BOT, answer=True)
    ).exists()


def record_article_feedback(conversation: Conversation, message_id: object, helpful: object) -> Message:
    """ "Was this helpful?" on a knowledge answer (issue 16): kept on the answer (the
    helpful ones are the learning pairs, see chatbot.knowledge.services.learning_pairs)
    and, like a thumb, in the review inbox; a "no" offers a person next, as a thumbs-down does."""
    if not isinstance(helpful, bool):
        raise ProtocolError("invalid_feedback", "helpful must be true or false.")
    try:
        message = conversation.messages.get(pk=int(message_id), sender=Message.Sender.BOT, answer_source="article")
    except (ValueError, TypeError, Message.DoesNotExist):
        raise ProtocolError("unknown_message", "No knowledge answer with that id in this conversation.") from None
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(helpful=helpful)
        record_thumbs(conversation, message.pk, "up" if helpful else "down")
    message.helpful = helpful
    return message


def record_rating(conversation: Conversation, score: object) -> None:
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise ProtocolError("invalid_rating", "score must be a whole number from 1 to 5.")
    if not was_answered(conversation):
        raise ProtocolError("not_answered", "Nobody has answered yet: there is nothing to rate.")
    Conversation.objects.filter(pk=conversation.pk).update(csat=score)
    rating_recorded.send(sender=Conversation, conversation_id=conversation.pk, score=score)


def identify(conversation: Conversation, name: object, email: object, user_id=None, user_hash=None) -> None:
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
    # What a visitor types is unverified; an identity signed by the embedding site is verified.
    try:
        fields.update(identity.verified_fields(conversation.visitor_id, fields.get("email"), user_id, user_hash))
    except identity.IdentityRefused as exc:
        raise ProtocolError(exc.code, str(exc)) from None
    if not fields:
        return
    with transaction.atomic():
        Visitor.objects.filter(pk=conversation.visitor_id).update(**fields)
        locked = lock_conversation(conversation.pk)
        if fields.get("email") and waits_offline(locked):
            # The widget's email field of an offline request: confirmed and sent to the team.
            leave_email_locked(locked, fields["email"])
