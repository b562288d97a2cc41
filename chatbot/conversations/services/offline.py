"""Offline messages: the email address a waiting visitor leaves, confirmed to them,
shown on the conversation and sent on to the team through Django's email backend."""

import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q

from chatbot import realtime
from chatbot.conversations import events
from chatbot.conversations.models import Conversation, Message, Visitor
from chatbot.conversations.services.messages import append_message

log = logging.getLogger(__name__)

EMAIL_SAVED_TEXT = "Thanks! We'll reply to {email} as soon as we can. You can close this window."
# Something with an @ between non-space characters; Django's validator decides.
_CANDIDATE = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")
PERMISSION = "conversations.work_in_dashboard"


def find_email(text: str) -> str:
    """The first valid email address in a visitor's message ("sure, it's ada@example.com."), or ""."""
    for candidate in _CANDIDATE.findall(text or ""):
        candidate = candidate.rstrip(".!?")
        try:
            validate_email(candidate)
        except ValidationError:
            continue
        return candidate
    return ""


def waits_offline(conversation: Conversation) -> bool:
    return conversation.status == Conversation.Status.WAITING_FOR_AGENT and conversation.offline_message


def leave_email_locked(conversation: Conversation, email: str, *, reply_to_id: int | None = None) -> Message:
    """Store the address on the visitor, confirm it in the transcript and tell the
    team (after commit). The caller holds the conversation's row lock."""
    Visitor.objects.filter(pk=conversation.visitor_id).update(email=email)
    confirmation = append_message(
        conversation, sender=Message.Sender.SYSTEM, text=EMAIL_SAVED_TEXT.format(email=email), reply_to_id=reply_to_id
    )
    group = realtime.conversation_group(conversation.pk)
    realtime.push(group, events.message_event(confirmation))
    realtime.push(realtime.AGENTS_GROUP, events.queue_event(conversation))
    conversation_id = conversation.pk
    transaction.on_commit(lambda: notify_team(conversation_id))
    return confirmation


def team_addresses() -> list[str]:
    if settings.SUPPORT_TEAM_EMAILS:
        return list(settings.SUPPORT_TEAM_EMAILS)
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    agents = users.filter(
        Q(is_superuser=True)
        | Q(user_permissions__codename="work_in_dashboard")
        | Q(groups__permissions__codename="work_in_dashboard")
    )
    return sorted(set(agents.values_list("email", flat=True)))


def notify_team(conversation_id) -> int:
    """One email to the team about an offline message (the console backend by default)."""
    conversation = Conversation.objects.select_related("visitor").get(pk=conversation_id)
    recipients = team_addresses()
    if not recipients:
        log.warning("offline message in conversation %s: nobody to notify (set SUPPORT_TEAM_EMAILS)", conversation_id)
        return 0
    said = conversation.messages.filter(sender=Message.Sender.VISITOR).order_by("seq").values_list("text", flat=True)
    body = "\n".join(
        [
            f"A visitor left a message while nobody was online. Reply to: {conversation.visitor.email}",
            f"Conversation: {conversation.pk}",
            "",
            *(f"> {text}" for text in said),
        ]
    )
    try:
        return send_mail(f"Offline message from {conversation.visitor.email}", body, None, recipients)
    except Exception:  # the visitor's message is stored either way
        log.exception("could not email the team about conversation %s", conversation_id)
        return 0
