"""Changes of hands: from the bot to the agents' queue, and every status change's
system message and events."""

import statistics
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Min, Q
from django.dispatch import Signal
from django.utils import timezone

from chatbot import realtime
from chatbot.conversations import events
from chatbot.conversations.models import BusinessHours, Conversation, Message
from chatbot.conversations.services.messages import append_message, lock_conversation
from chatbot.ops.versioned import VersionedCache

HANDOFF_TEXT = "I'm handing you over to a member of our support team. Someone will reply here shortly."
NO_AGENT_TEXT = "Our support team is offline right now. Leave your email address and we'll get back to you."
# What the visitor reads in the transcript (the reason stays agent-side, in an internal note).
QUEUE_TEXT = "You're in the queue. Our team usually replies within {expected}."
OFFLINE_QUEUE_TEXT = "You're in the queue. Our team is offline right now and usually replies within {expected}."
# The window first response times are measured over, and the answer without any.
REPLY_TIME_WINDOW = timedelta(days=14)
DEFAULT_REPLY_TIME = "a few hours"
# Every widget that connects is told the reply time: the measured one (a scan of two
# weeks of conversations) is shared through the cache for this long.
MEASURED_REPLY_TIME_SECONDS = 300
MEASURED_REPLY_TIME_KEY = "support:measured-reply-time"

# The business-hours row, in each process's memory until staff change it.
_hours = VersionedCache("business-hours")


def connect_signals() -> None:
    _hours.watch(BusinessHours)


def business_hours() -> BusinessHours:
    return _hours.get("current", BusinessHours.current)


# Sent (with `conversation_id`) after commit when a conversation enters the agents'
# queue; the agents app may assign it to someone (AUTO_ASSIGN).
conversation_waiting = Signal()

# Who is online is the agents app's to know; it registers how to ask
# (AgentsConfig.ready), so this app never imports the dashboard's code.
_agents_online_probe: Callable[[], bool] | None = None


def register_agents_online_probe(probe: Callable[[], bool]) -> None:
    global _agents_online_probe
    _agents_online_probe = probe


def any_agent_online() -> bool:
    """With no agents app installed, nobody can answer: handoffs become offline messages."""
    return _agents_online_probe is not None and _agents_online_probe()


def expected_reply_time(*, shared: bool = False, hours: BusinessHours | None = None) -> str:
    """ "a few minutes", "2 hours"...: the configured text, else the median time from
    entering the queue to an agent's first reply over the last 14 days (with `shared`,
    as measured by any process in the last MEASURED_REPLY_TIME_SECONDS)."""
    if settings.EXPECTED_REPLY_TEXT:
        return settings.EXPECTED_REPLY_TEXT
    configured = (hours or business_hours()).reply_time_text
    if configured:
        return configured
    if shared:
        return cache.get_or_set(MEASURED_REPLY_TIME_KEY, measured_reply_time, MEASURED_REPLY_TIME_SECONDS)
    return measured_reply_time()


def measured_reply_time() -> str:
    since = timezone.now() - REPLY_TIME_WINDOW
    rows = (
        Conversation.objects.filter(waiting_since__gte=since)
        .annotate(
            first_reply=Min(
                "messages__created_at",
                filter=Q(messages__sender=Message.Sender.AGENT, messages__internal=False),
            )
        )
        .filter(first_reply__isnull=False)
        .values_list("waiting_since", "first_reply")
    )
    waits = [(reply - waiting).total_seconds() for waiting, reply in rows if reply >= waiting]
    return describe_wait(statistics.median(waits)) if waits else DEFAULT_REPLY_TIME


def availability() -> dict:
    """What the widget's header says about the team: in hours or not, and the reply time.
    Asked by every widget that connects, so it costs no query while nothing changed."""
    hours = business_hours()
    return {"open": hours.is_open(timezone.now()), "replies_in": expected_reply_time(shared=True, hours=hours)}


def describe_wait(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 5:
        return "a few minutes"
    if minutes < 60:
        return f"{int(round(minutes / 5) * 5) or 5} minutes"
    hours = round(minutes / 60)
    if hours < 24:
        return "an hour" if hours <= 1 else f"{hours} hours"
    return "a day" if hours < 36 else f"{round(hours / 24)} days"


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
    realtime.push(realtime.conversation_group(conversation.pk), events.message_event(system))
    realtime.push(realtime.conversation_group(conversation.pk), events.status_event(conversation))
    entered_queue = status == Conversation.Status.WAITING_FOR_AGENT
    realtime.push(realtime.AGENTS_GROUP, events.queue_event(conversation, entered_queue=entered_queue))


def hand_off_locked(conversation: Conversation, reason: str, *, offline: bool) -> None:
    """Into the agents' queue, for `reason`. The caller holds the row lock."""
    conversation.waiting_since = timezone.now()
    conversation.handoff_reason = reason
    conversation.offline_message = offline
    # For agents only: why, and whether anyone was online.
    reason = f"Handed off to a person: {conversation.get_handoff_reason_display()}."
    if offline:
        reason += " No agent was online; waiting as an offline message."
    note = append_message(conversation, sender=Message.Sender.SYSTEM, text=reason, internal=True)
    realtime.push(realtime.conversation_group(conversation.pk), events.message_event(note))
    # For the visitor: customer wording.
    text = OFFLINE_QUEUE_TEXT if offline else QUEUE_TEXT
    change_status(
        conversation, Conversation.Status.WAITING_FOR_AGENT, text.format(expected=expected_reply_time(shared=True))
    )
    conversation_id = conversation.pk
    transaction.on_commit(lambda: conversation_waiting.send(sender=hand_off_locked, conversation_id=conversation_id))


def hand_off(conversation_id, reason: str) -> Conversation:
    """Put a bot conversation in the agents' queue. No-op when a person already has it.
    With no agent online the visitor is asked for an email address instead."""
    with transaction.atomic():
        conversation = lock_conversation(conversation_id)
        if conversation.status == Conversation.Status.BOT:
            offline = not any_agent_online()
            hand_off_locked(conversation, reason, offline=offline)
            bot = append_message(
                conversation, sender=Message.Sender.BOT, text=NO_AGENT_TEXT if offline else HANDOFF_TEXT
            )
            realtime.push(realtime.conversation_group(conversation.pk), events.message_event(bot))
    return conversation
