"""The outcome of a conversation, computed exactly as docs/analytics.md defines it,
and stored when it is final (closed, or idle past ANALYTICS_IDLE_WINDOW_H).

`finalise` is the one writer of final outcomes: the beat task calls it for idle
conversations, the close signal for a closed one, the thumbs-down signal and the
CSAT sweep for a final one whose facts changed.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from chatbot.analytics import cache as report_cache
from chatbot.analytics import rollup
from chatbot.analytics.models import ConversationOutcome, Outcome
from chatbot.conversations.models import Conversation, Message
from chatbot.nlu.models import Feedback

log = logging.getLogger(__name__)

Status = Conversation.Status
Sender = Message.Sender
HANDED_OVER_STATUSES = (Status.WAITING_FOR_AGENT, Status.WITH_AGENT)
BATCH = 2000


def idle_window() -> timedelta:
    return timedelta(hours=settings.ANALYTICS_IDLE_WINDOW_H)


@dataclass
class Facts:
    """What one conversation's messages and feedback say, for the definitions."""

    visitor_messages: int = 0
    bot_answers: list = field(default_factory=list)  # (seq, reply_to_id, model_version_id)
    fallback_message_ids: set = field(default_factory=set)
    thumbs_down: bool = False
    first_visitor_at: datetime | None = None
    last_message_at: datetime | None = None
    agent_messages: list = field(default_factory=list)  # (created_at, author_id), not internal


def classify(conversation: Conversation, facts: Facts, handed_off_at: datetime | None) -> str:
    """The definitions of docs/analytics.md, in their order."""
    if facts.visitor_messages == 0:
        return Outcome.NO_VISITOR_MESSAGE
    if handed_off_at is not None:
        agent_replied = any(at >= handed_off_at for at, _ in facts.agent_messages)
        # An offline message (no agent online, the visitor leaves an email address) is
        # followed up by email, not abandoned.
        return Outcome.HANDED_OFF if agent_replied or conversation.offline_message else Outcome.ABANDONED
    answered = [a for a in facts.bot_answers if a[1] not in facts.fallback_message_ids]
    last_was_fallback = bool(facts.bot_answers) and facts.bot_answers[-1][1] in facts.fallback_message_ids
    rated_low = conversation.csat is not None and conversation.csat <= 2
    if answered and not last_was_fallback and not facts.thumbs_down and not rated_low:
        return Outcome.RESOLVED_BY_BOT
    return Outcome.UNANSWERED


def _facts_for(conversation_ids: list) -> dict:
    facts: dict = defaultdict(Facts)
    messages = (
        Message.objects.filter(conversation_id__in=conversation_ids)
        .order_by("conversation_id", "seq")
        .values_list(
            "id",
            "conversation_id",
            "seq",
            "sender",
            "created_at",
            "internal",
            "author_id",
            "reply_to_id",
            "model_version_id",
        )
    )
    conversation_of = {}
    for message_id, conversation_id, seq, sender, created_at, internal, author_id, reply_to_id, version_id in messages:
        conversation_of[message_id] = conversation_id
        f = facts[conversation_id]
        if internal:
            continue
        f.last_message_at = created_at
        if sender == Sender.VISITOR:
            f.visitor_messages += 1
            f.first_visitor_at = f.first_visitor_at or created_at
        elif sender == Sender.BOT and reply_to_id is not None:
            f.bot_answers.append((seq, reply_to_id, version_id))
        elif sender == Sender.AGENT:
            f.agent_messages.append((created_at, author_id))
    # By the ids just read (the feedback's message index), not a second join of the
    # messages; on PostgreSQL as one array, not ten thousand parameters.
    sources = [Feedback.Source.FALLBACK, Feedback.Source.THUMBS_DOWN]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT message_id, source FROM {Feedback._meta.db_table} "
                "WHERE message_id = ANY(%s) AND source = ANY(%s)",
                [list(conversation_of), [str(s) for s in sources]],
            )
            feedback = cursor.fetchall()
    else:
        feedback = Feedback.objects.filter(message_id__in=list(conversation_of), source__in=sources).values_list(
            "message_id", "source"
        )
    for message_id, source in feedback:
        if source == Feedback.Source.FALLBACK:
            facts[conversation_of[message_id]].fallback_message_ids.add(message_id)
        else:
            facts[conversation_of[message_id]].thumbs_down = True
    return facts


def _handoff(
    conversation: Conversation, remembered: ConversationOutcome | None, facts: Facts
) -> tuple[str, datetime | None]:
    """(reason, when) of the first handoff, or ("", None) when there was none."""
    if remembered is not None and remembered.handed_off_at is not None:
        return remembered.handoff_reason, remembered.handed_off_at
    first_agent_at = min((at for at, _ in facts.agent_messages), default=None)
    handed = conversation.handoff_reason or conversation.status in HANDED_OVER_STATUSES or first_agent_at
    if not handed:
        return "", None
    when = conversation.waiting_since or first_agent_at or conversation.updated_at
    return conversation.handoff_reason or "agent", when


def _outcome_row(
    conversation: Conversation, remembered: ConversationOutcome | None, facts: Facts, now
) -> ConversationOutcome:
    reason, handed_off_at = _handoff(conversation, remembered, facts)
    outcome = classify(conversation, facts, handed_off_at)
    row = ConversationOutcome(
        conversation_id=conversation.pk,
        outcome=outcome,
        final=True,
        handoff_reason=reason,
        handed_off_at=handed_off_at,
        started_at=facts.first_visitor_at or conversation.created_at,
        ended_at=conversation.closed_at or facts.last_message_at or conversation.updated_at,
        model_version_id=next((v for _, _, v in facts.bot_answers if v is not None), None),
        visitor_messages=facts.visitor_messages,
        bot_answers=len(facts.bot_answers),
        fallbacks=sum(1 for a in facts.bot_answers if a[1] in facts.fallback_message_ids),
        thumbs_down=facts.thumbs_down,
        csat=conversation.csat,
        computed_at=now,
    )
    if handed_off_at is not None:
        replies = [(at, author) for at, author in facts.agent_messages if at >= handed_off_at]
        if replies:
            row.first_response_s = (replies[0][0] - handed_off_at).total_seconds()
        row.agent_id = conversation.assigned_agent_id or (replies[0][1] if replies else None)
    if outcome != Outcome.NO_VISITOR_MESSAGE and row.ended_at and row.started_at:
        row.resolution_s = max(0.0, (row.ended_at - row.started_at).total_seconds())
    return row


UPDATE_FIELDS = [
    f.name for f in ConversationOutcome._meta.concrete_fields if f.name != "conversation" and not f.primary_key
]


# What the definitions read of a conversation (not the whole row).
CONVERSATION_FIELDS = [
    "status",
    "assigned_agent",
    "handoff_reason",
    "offline_message",
    "csat",
    "created_at",
    "updated_at",
    "waiting_since",
    "closed_at",
]


def _store(rows: list[ConversationOutcome]) -> None:
    """Insert or replace these outcomes. On PostgreSQL one statement over column
    arrays (unnest): a tenth of the time bulk_create spends preparing each value."""
    if connection.vendor != "postgresql":
        ConversationOutcome.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["conversation"], update_fields=UPDATE_FIELDS
        )
        return
    meta = ConversationOutcome._meta
    fields = [meta.get_field("conversation"), *(meta.get_field(name) for name in UPDATE_FIELDS)]
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    updates = ", ".join(f"{f.column} = EXCLUDED.{f.column}" for f in fields[1:])
    sql = (
        f"INSERT INTO {meta.db_table} ({', '.join(f.column for f in fields)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({fields[0].column}) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[getattr(row, f.attname) for row in rows] for f in fields])


def is_due(conversation: Conversation, now: datetime) -> bool:
    return conversation.status == Status.CLOSED or conversation.updated_at < now - idle_window()


def finalise(conversation_ids: Iterable, now: datetime | None = None) -> int:
    """Compute and store the final outcome of each conversation that is due (closed,
    or idle past the window); skip the others. Returns how many were stored.

    Each conversation row is locked while its outcome is computed, so a handoff
    racing in waits and then reopens the outcome (it cannot be overwritten)."""
    now = now or timezone.now()
    ids = list(conversation_ids)
    stored = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        with transaction.atomic():
            conversations = [
                c
                for c in Conversation.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk__in=chunk)
                .only(*CONVERSATION_FIELDS)
                .order_by()
                if is_due(c, now)
            ]
            if not conversations:
                continue
            due_ids = [c.pk for c in conversations]
            remembered = ConversationOutcome.objects.in_bulk(due_ids)
            facts = _facts_for(due_ids)
            rows = [_outcome_row(c, remembered.get(c.pk), facts[c.pk], now) for c in conversations]
            _store(rows)
            stored += len(rows)
    if stored:
        transaction.on_commit(report_cache.outcomes_changed)
    return stored


def due_conversation_ids(now: datetime, limit: int) -> list:
    """Closed or idle conversations without a final outcome."""
    final = ConversationOutcome.objects.filter(conversation=OuterRef("pk"), final=True)
    due = Conversation.objects.filter(Q(status=Status.CLOSED) | Q(updated_at__lt=now - idle_window()))
    return list(due.filter(~Exists(final)).order_by().values_list("pk", flat=True)[:limit])


def stale_ratings(now: datetime) -> list:
    """Final outcomes whose CSAT was given (or changed) after they were computed:
    a rating is stored with a plain UPDATE, which sends no signal."""
    recent = now - timedelta(days=settings.ANALYTICS_RATING_LOOKBACK_DAYS)
    rows = ConversationOutcome.objects.filter(
        final=True, started_at__gte=recent, conversation__csat__isnull=False
    ).exclude(csat=F("conversation__csat"))
    return list(rows.values_list("conversation_id", flat=True))


def finalise_due(now: datetime | None = None, limit: int | None = None) -> int:
    """The beat task's work: every due conversation, then the late ratings."""
    now = now or timezone.now()
    limit = limit or settings.ANALYTICS_FINALISE_MAX
    done = 0
    while done < limit:
        asked = min(BATCH * 5, limit - done)
        ids = due_conversation_ids(now, asked)
        if not ids:
            break
        stored = finalise(ids, now)
        done += stored
        if stored == 0 or len(ids) < asked:  # all locked by someone else, or none left: the next run
            break
    done += finalise(stale_ratings(now), now)
    rollup.refresh()  # so the next report reads the new outcomes summed already
    return done


# --- What signals change ------------------------------------------------------


def record_handoff(conversation: Conversation) -> None:
    """The conversation is with people now: whatever was counted, it is not the
    bot's resolution. Remember the first handoff; the outcome is final later."""
    now = timezone.now()
    row, created = ConversationOutcome.objects.get_or_create(
        conversation_id=conversation.pk,
        defaults={
            "outcome": Outcome.HANDED_OFF,
            "handoff_reason": conversation.handoff_reason or "agent",
            "handed_off_at": conversation.waiting_since or now,
            "started_at": conversation.created_at,
        },
    )
    transaction.on_commit(report_cache.outcomes_changed)
    if created:
        return
    changes = {"outcome": Outcome.HANDED_OFF, "final": False}
    if row.handed_off_at is None:
        changes.update(
            handoff_reason=conversation.handoff_reason or "agent", handed_off_at=conversation.waiting_since or now
        )
    ConversationOutcome.objects.filter(pk=row.pk).update(**changes)


def reopen(conversation_id) -> None:
    """The visitor wrote again: a final outcome is final no more."""
    if ConversationOutcome.objects.filter(pk=conversation_id, final=True).update(final=False):
        transaction.on_commit(report_cache.outcomes_changed)
