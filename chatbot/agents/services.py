"""What agents do in the dashboard: take a conversation, reply, write internal
notes, close it, hand it back to the bot, correct the bot's intents.

One function a verb. Each checks who may act, changes state under the
conversation's row lock (or a conditional update) and pushes its events after
commit; views and the agent consumer only move data in and out.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from chatbot import realtime
from chatbot.agents import names
from chatbot.conversations import services as chat
from chatbot.conversations.models import Conversation, Message
from chatbot.nlu.models import Feedback, Intent
from chatbot.replies import services as replies
from chatbot.replies.tasks import enqueue_suggestions

log = logging.getLogger(__name__)

PERMISSION = "conversations.work_in_dashboard"
# A bot conversation counts as live while its visitor wrote within this window.
BOT_LIVE_WINDOW = timedelta(minutes=30)

Status = Conversation.Status


class AgentActionError(Exception):
    """An action the rules refuse; `code` is stable for clients, `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_agent(user) -> bool:
    """May this user work in the dashboard? (Superusers have every permission.)"""
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(PERMISSION))


def display_name(user) -> str:
    return names.display_name(user)  # never the login name (issue 13)


def check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise AgentActionError("empty_text", "Write something first.")
    if len(text) > settings.MAX_MESSAGE_CHARS:
        raise AgentActionError("text_too_long", f"At most {settings.MAX_MESSAGE_CHARS} characters.")
    return text.strip()


def _locked(conversation_id) -> Conversation:
    try:
        return chat.lock_conversation(conversation_id)
    except (Conversation.DoesNotExist, ValueError):
        raise AgentActionError("not_found", "No such conversation.") from None


def _check_holder(conversation: Conversation, agent) -> None:
    if conversation.status != Status.WITH_AGENT or conversation.assigned_agent_id != agent.pk:
        raise AgentActionError("not_yours", "Take the conversation first.")


# --- Changing hands ----------------------------------------------------------


def take_over(conversation_id, agent) -> Conversation:
    """Assign the conversation to `agent`, from the queue or from the bot.

    Two agents clicking at once: the conditional UPDATE lets exactly one win
    (PostgreSQL re-checks the WHERE after waiting for the other's row lock;
    SQLite serialises writers), and the loser learns who has it.
    """
    with transaction.atomic():
        won = Conversation.objects.filter(
            pk=conversation_id, status__in=[Status.BOT, Status.WAITING_FOR_AGENT], assigned_agent__isnull=True
        ).update(status=Status.WITH_AGENT, assigned_agent=agent, updated_at=timezone.now())
        if not won:
            current = Conversation.objects.filter(pk=conversation_id).select_related("assigned_agent").first()
            if current is None:
                raise AgentActionError("not_found", "No such conversation.")
            if current.status == Status.CLOSED:
                raise AgentActionError("closed", "This conversation is closed.")
            if current.assigned_agent_id == agent.pk:
                raise AgentActionError("already_yours", "You already have this conversation.")
            holder = display_name(current.assigned_agent) if current.assigned_agent else "another agent"
            raise AgentActionError("taken", f"{holder} already took this conversation.")
        conversation = chat.lock_conversation(conversation_id)
        if not conversation.handoff_reason:
            conversation.handoff_reason = "agent"
        conversation.fallback_streak = 0
        chat.change_status(conversation, Status.WITH_AGENT, f"{display_name(agent)} joined the conversation.")
        newest = conversation.messages.filter(sender=Message.Sender.VISITOR).order_by("-seq").values("pk").first()
        if newest is not None:
            # Suggestions for what the visitor said last, ready when the agent starts typing.
            transaction.on_commit(lambda: enqueue_suggestions(newest["pk"]))
    return conversation


def hand_back(conversation_id, agent) -> Conversation:
    """Give the conversation back to the bot: it answers the next message again."""
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation.status == Status.WAITING_FOR_AGENT and conversation.assigned_agent_id is None:
            pass  # nobody has it yet: any agent may send it back to the bot
        else:
            _check_holder(conversation, agent)
        conversation.assigned_agent = None
        conversation.fallback_streak = 0
        conversation.waiting_since = None
        conversation.offline_message = False
        conversation.handoff_reason = ""
        chat.change_status(conversation, Status.BOT, f"{display_name(agent)} handed the conversation back to the bot.")
    return conversation


def close(conversation_id, agent) -> Conversation:
    """Close a conversation that is the agent's own, or nobody's."""
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation.status == Status.CLOSED:
            raise AgentActionError("closed", "This conversation is already closed.")
        if conversation.assigned_agent_id not in (None, agent.pk):
            raise AgentActionError("not_yours", "Another agent has this conversation.")
        conversation.closed_at = timezone.now()
        chat.change_status(conversation, Status.CLOSED, f"{display_name(agent)} closed the conversation.")
    # A handled conversation is what the reply models learn from; the conversation is
    # closed whatever happens to that.
    try:
        replies.retrain_if_due()
    except Exception:
        log.exception("could not start retraining the reply models")
    return conversation


# --- Writing -----------------------------------------------------------------


def reply(conversation_id, agent, text: object) -> Message:
    """A message to the visitor, shown with the agent's name. Only the holder may reply."""
    text = check_text(text)
    with transaction.atomic():
        conversation = _locked(conversation_id)
        _check_holder(conversation, agent)
        message = chat.append_message(conversation, sender=Message.Sender.AGENT, text=text, author=agent)
        realtime.push(realtime.conversation_group(conversation.pk), chat.message_event(message))
        realtime.push(realtime.AGENTS_GROUP, chat.queue_event(conversation))
    return message


def add_note(conversation_id, agent, text: object) -> Message:
    """An internal note: in the transcript for agents, never sent to the visitor."""
    text = check_text(text)
    with transaction.atomic():
        conversation = _locked(conversation_id)
        message = chat.append_message(conversation, sender=Message.Sender.AGENT, text=text, author=agent, internal=True)
        realtime.push(realtime.conversation_group(conversation.pk), chat.message_event(message))
    return message


def typing_event(agent, on: bool) -> dict:
    return {"type": "chat.typing", "sender": "agent", "on": bool(on), "agent_name": display_name(agent)}


# --- Teaching the bot -------------------------------------------------------


def correct_intent(message_id: object, agent, intent_name: object) -> Feedback:
    """Record what a visitor message really meant, for the retraining loop.
    One correction per message: a second one replaces the first."""
    try:
        message = Message.objects.get(pk=int(message_id), sender=Message.Sender.VISITOR)
    except (ValueError, TypeError, Message.DoesNotExist):
        raise AgentActionError("unknown_message", "No visitor message with that id.") from None
    if not isinstance(intent_name, str) or not Intent.objects.filter(name=intent_name).exists():
        raise AgentActionError("unknown_intent", "Pick one of the bot's intents.")
    feedback, _ = Feedback.objects.update_or_create(
        message=message,
        source=Feedback.Source.CORRECTION,
        defaults={
            "suggested_intent": intent_name,
            "predicted_intent": message.intent,
            "confidence": message.confidence,
            "created_by": agent,
            "status": Feedback.Status.PENDING,
            "reviewed_at": None,
        },
    )
    return feedback


# --- What the dashboard shows ------------------------------------------------


@dataclass
class Queue:
    waiting: list[Conversation]
    mine: list[Conversation]
    colleagues: list[Conversation]
    bot: list[Conversation]


def queue_for(agent) -> Queue:
    """Waiting conversations oldest first, then the agent's own, then other
    agents', then the bot's live ones (most recent first)."""
    # What the visitor said last is what an agent scanning the queue needs.
    last_text = (
        Message.objects.filter(conversation=OuterRef("pk"), sender=Message.Sender.VISITOR)
        .order_by("-seq")
        .values("text")[:1]
    )
    base = Conversation.objects.select_related("visitor", "assigned_agent").annotate(last_text=Subquery(last_text))
    with_agent = base.filter(status=Status.WITH_AGENT).order_by("-updated_at")
    return Queue(
        waiting=list(base.filter(status=Status.WAITING_FOR_AGENT).order_by("waiting_since", "created_at")),
        mine=list(with_agent.filter(assigned_agent=agent)),
        colleagues=list(with_agent.exclude(assigned_agent=agent)),
        bot=list(
            base.filter(status=Status.BOT, last_seq__gt=0, updated_at__gte=timezone.now() - BOT_LIVE_WINDOW).order_by(
                "-updated_at"
            )[:30]
        ),
    )


def transcript(conversation: Conversation) -> list[Message]:
    """Every message, notes included, each visitor message with its correction (if any)."""
    messages = list(conversation.messages.select_related("author").order_by("seq"))
    corrections = dict(
        Feedback.objects.filter(message__conversation=conversation, source=Feedback.Source.CORRECTION).values_list(
            "message_id", "suggested_intent"
        )
    )
    for message in messages:
        message.correction = corrections.get(message.pk, "")
    return messages


def agent_message_frame(message: Message) -> dict:
    """A message as the dashboard shows it: the visitor's frame plus what only agents see."""
    frame = chat.message_frame(message)
    frame["internal"] = message.internal
    if message.sender == Message.Sender.VISITOR:
        frame.update(intent=message.intent, confidence=message.confidence)
    if message.author is not None:
        frame["agent_name"] = display_name(message.author)
    return frame


def handoff_reason_text(reason: str) -> str:
    return chat.HANDOFF_REASONS.get(reason, reason)
