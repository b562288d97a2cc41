"""What agents do in the dashboard: take a conversation, reply, write internal
notes, close it, hand it back to the bot, correct the bot's intents.

One function a verb. Each checks who may act, changes state under the
conversation's row lock (or a conditional update) and pushes its events after
commit; views and the agent consumer only move data in and out.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from chatbot import realtime
from chatbot.conversations import events
from chatbot.conversations import services as chat
from chatbot.conversations.events import display_name
from chatbot.conversations.models import Conversation, HandoffReason, Message
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


def login_still_valid(session_key: str | None, user_id: int) -> bool:
    """Is the login a dashboard socket was opened with still good: its session still
    there (not logged out, not expired), still this user's (and not from before a
    password change), and the user still an agent? Read fresh from the session store,
    never from the copy the socket loaded at connect."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=store))
    return user.pk == user_id and is_agent(user)


def recheck_agent_sockets(user_ids) -> None:
    """Ask the users' open dashboard sockets to re-check their login now (after a
    logout, or a change of who may work in the dashboard); each closes if it fails."""
    for user_id in set(user_ids):
        realtime.push(realtime.agent_group(user_id), {"type": "agent.recheck"})


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
    if not conversation.is_held_by(agent):
        raise AgentActionError("not_yours", "Take the conversation first.")


# --- Changing hands ----------------------------------------------------------


def take_over(conversation_id, agent) -> Conversation:
    """Assign the conversation to `agent`, from the queue or from the bot.

    Two agents clicking at once: the conditional UPDATE lets exactly one win
    (PostgreSQL re-checks the WHERE after waiting for the other's row lock;
    SQLite serialises writers), and the loser learns who has it.
    """
    with transaction.atomic():
        # The same rule as Conversation.can_take, as a WHERE: checked and changed in one statement.
        won = Conversation.objects.filter(
            pk=conversation_id, status__in=Conversation.TAKEABLE, assigned_agent__isnull=True
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
            conversation.handoff_reason = HandoffReason.AGENT
        conversation.fallback_streak = 0
        # Someone answers now: it is no longer an offline message (the email stays on the visitor).
        conversation.offline_message = False
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
        if not conversation.can_hand_back(agent):
            raise AgentActionError("not_yours", "Take the conversation first.")
        conversation.assigned_agent = None
        conversation.fallback_streak = 0
        conversation.waiting_since = None
        conversation.offline_message = False
        conversation.handoff_reason = ""
        chat.change_status(conversation, Status.BOT, f"{display_name(agent)} handed the conversation back to the bot.")
    return conversation


def close(conversation_id, agent) -> Conversation:
    """Close a conversation that is the agent's own, or nobody's (Conversation.can_close)."""
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation.status == Status.CLOSED:
            raise AgentActionError("closed", "This conversation is already closed.")
        if not conversation.can_close(agent):
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
        realtime.push(realtime.conversation_group(conversation.pk), events.message_event(message))
        realtime.push(realtime.AGENTS_GROUP, events.queue_event(conversation))
    return message


def add_note(conversation_id, agent, text: object) -> Message:
    """An internal note: in the transcript for agents, never sent to the visitor."""
    text = check_text(text)
    with transaction.atomic():
        conversation = _locked(conversation_id)
        message = chat.append_message(conversation, sender=Message.Sender.AGENT, text=text, author=agent, internal=True)
        realtime.push(realtime.conversation_group(conversation.pk), events.message_event(message))
    return message


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


QUEUE_SECTIONS = ("waiting", "mine", "colleagues", "bot")


@dataclass
class Queue:
    """Each section holds one page (QUEUE_PAGE_SIZE) of its conversations; `pages`
    has Django's Page of each (its paginator's count is the section's total, and
    has_next() means "N more"), so a flood of handoffs never renders in full."""

    waiting: list[Conversation]
    mine: list[Conversation]
    colleagues: list[Conversation]
    bot: list[Conversation]
    pages: dict = field(default_factory=dict)

    @property
    def more(self) -> dict[str, int]:
        """Conversations after the shown page, per section."""
        return {name: page.paginator.count - page.end_index() for name, page in self.pages.items() if page.has_next()}


def queue_for(agent, pages: dict[str, object] | None = None) -> Queue:
    """Waiting conversations oldest first, then the agent's own, then other
    agents', then the bot's live ones (most recent first). `pages` picks each
    section's page (1 when missing or not a page number)."""
    # What the visitor said last is what an agent scanning the queue needs.
    last_text = (
        Message.objects.filter(conversation=OuterRef("pk"), sender=Message.Sender.VISITOR)
        .order_by("-seq")
        .values("text")[:1]
    )
    base = Conversation.objects.select_related("visitor", "assigned_agent").annotate(last_text=Subquery(last_text))
    with_agent = base.filter(status=Status.WITH_AGENT).order_by("-updated_at", "pk")
    sections = {
        "waiting": base.filter(status=Status.WAITING_FOR_AGENT).order_by("waiting_since", "created_at", "pk"),
        "mine": with_agent.filter(assigned_agent=agent),
        "colleagues": with_agent.exclude(assigned_agent=agent),
        "bot": base.filter(
            status=Status.BOT, last_seq__gt=0, updated_at__gte=timezone.now() - BOT_LIVE_WINDOW
        ).order_by("-updated_at", "pk")[:30],
    }
    pages = pages or {}
    shown = {
        name: Paginator(conversations, settings.QUEUE_PAGE_SIZE).get_page(pages.get(name))
        for name, conversations in sections.items()
    }
    return Queue(**{name: list(page.object_list) for name, page in shown.items()}, pages=shown)


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


def suggest_replies_for(sender=None, *, message_id: int, **kwargs) -> None:
    """The bot has dealt with a visitor message: when a person handles the conversation,
    ask for reply suggestions (`enqueue_suggestions` decides; a task of its own)."""
    enqueue_suggestions(message_id)


# --- The inbox: views, search, transfer (issue 14) ------------------------------------

INBOX_VIEWS = {"mine": "Mine", "unassigned": "Unassigned", "open": "All open", "closed": "Closed"}
INBOX_LIMIT = 100


def inbox(agent, view: str, query: str = "") -> list[Conversation]:
    """One of the inbox's views, newest activity first, narrowed by `query` (visitor
    messages, the visitor's email, the conversation id)."""
    last_text = (
        Message.objects.filter(conversation=OuterRef("pk"), sender=Message.Sender.VISITOR)
        .order_by("-seq")
        .values("text")[:1]
    )
    conversations = Conversation.objects.select_related("visitor", "assigned_agent").annotate(
        last_text=Subquery(last_text)
    )
    if view == "mine":
        conversations = conversations.filter(status=Status.WITH_AGENT, assigned_agent=agent)
    elif view == "unassigned":
        conversations = conversations.filter(status=Status.WAITING_FOR_AGENT, assigned_agent__isnull=True)
    elif view == "open":
        conversations = conversations.exclude(status=Status.CLOSED).filter(last_seq__gt=0)
    elif view == "closed":
        conversations = conversations.filter(status=Status.CLOSED)
    query = (query or "").strip()[:200]
    if query:
        conversations = conversations.filter(_matching(query))
    return list(conversations.order_by("-updated_at")[:INBOX_LIMIT])


def _matching(query: str) -> Q:
    """PostgreSQL full-text search over visitor messages; a plain icontains elsewhere."""
    visitor_messages = Message.objects.filter(sender=Message.Sender.VISITOR)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        said = visitor_messages.annotate(document=SearchVector("text")).filter(
            document=SearchQuery(query, search_type="websearch")
        )
    else:
        said = visitor_messages.filter(text__icontains=query)
    matches = Q(pk__in=said.values("conversation_id")) | Q(visitor__email__icontains=query)
    try:
        matches |= Q(pk=uuid.UUID(query))
    except ValueError:
        pass
    return matches


def contact_history(conversation: Conversation) -> list[Conversation]:
    """The visitor's other conversations, newest first."""
    return list(conversation.visitor.conversations.exclude(pk=conversation.pk).order_by("-created_at")[:20])


def transfer(conversation_id, agent, to_user_id: object) -> Conversation:
    """Hand a conversation the agent holds to a colleague: the colleague holds it now,
    the visitor reads that they joined, agents read who transferred it."""
    User = get_user_model()
    try:
        colleague = User.objects.get(pk=int(to_user_id))
    except (TypeError, ValueError, User.DoesNotExist):
        raise AgentActionError("unknown_agent", "Pick a colleague to transfer to.") from None
    if not is_agent(colleague):
        raise AgentActionError("unknown_agent", "That person may not use the agent dashboard.")
    if colleague.pk == agent.pk:
        raise AgentActionError("already_yours", "You already have this conversation.")
    with transaction.atomic():
        conversation = _locked(conversation_id)
        _check_holder(conversation, agent)
        conversation.assigned_agent = colleague
        note = chat.append_message(
            conversation,
            sender=Message.Sender.SYSTEM,
            internal=True,
            text=f"{display_name(agent)} transferred the conversation to {display_name(colleague)}.",
        )
        realtime.push(realtime.conversation_group(conversation.pk), events.message_event(note))
        chat.change_status(conversation, Status.WITH_AGENT, f"{display_name(colleague)} joined the conversation.")
    return conversation


# --- Auto-assignment (AUTO_ASSIGN, off by default) ----------------------------------------


def pick_agent_for_assignment() -> object | None:
    """The online agent with the fewest open conversations under AUTO_ASSIGN_LIMIT; on a
    tie, the one assigned longest ago (round robin)."""
    from chatbot.agents import presence

    best, best_key = None, None
    for candidate in presence.online_agents():
        if not is_agent(candidate):
            continue
        held = Conversation.objects.filter(status=Status.WITH_AGENT, assigned_agent=candidate)
        count = held.count()
        if count >= settings.AUTO_ASSIGN_LIMIT:
            continue
        last = held.order_by("-updated_at").values_list("updated_at", flat=True).first()
        key = (count, last.timestamp() if last else 0.0, candidate.pk)
        if best_key is None or key < best_key:
            best, best_key = candidate, key
    return best


def auto_assign(conversation_id) -> Conversation | None:
    """Give a waiting conversation to an agent. The claim is take_over's conditional
    update, so an agent clicking "Take over" at the same moment and this race safely:
    one wins, the other does nothing."""
    agent = pick_agent_for_assignment()
    if agent is None:
        return None
    try:
        return take_over(conversation_id, agent)
    except AgentActionError:
        return None  # someone took it meanwhile, or it left the queue


def auto_assign_waiting(sender=None, *, conversation_id, **kwargs) -> None:
    if settings.AUTO_ASSIGN:
        try:
            auto_assign(conversation_id)
        except Exception:  # the conversation stays in the queue for anyone to take
            log.exception("could not auto-assign conversation %s", conversation_id)
