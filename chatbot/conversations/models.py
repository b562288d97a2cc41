"""Visitors, their conversations and every message in them."""

import datetime
import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Visitor(models.Model):
    # Only the hash is stored: a database leak does not hand out sessions.
    token_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    page_url = models.URLField(max_length=2000, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    # --- Security and privacy (issue 13) ---
    # The token stops working after this; each use moves it on (chatbot.conversations.tokens).
    token_expires_at = models.DateTimeField(null=True, blank=True)
    # True only when the embedding site signed the identity (IDENTITY_VERIFICATION_SECRET);
    # a name and email the visitor typed are shown to agents as unverified.
    identity_verified = models.BooleanField(default=False)
    external_id = models.CharField(max_length=200, blank=True, help_text="The embedding site's user id (signed).")
    # --- End of security and privacy ---

    def __str__(self) -> str:
        return self.name or self.email or f"Visitor {self.pk}"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)


class HandoffReason(models.TextChoices):
    """Why a conversation went to a person. The label finishes the sentence
    "Handed off because ..."; `tag` is the short form on the queue's cards."""

    REQUESTED = "requested", "the visitor asked for a person"
    FALLBACK = "fallback", "the bot could not answer"
    THUMBS_DOWN = "thumbs_down", "the visitor disliked an answer"
    AGENT = "agent", "an agent took over"

    @property
    def tag(self) -> str:
        return _HANDOFF_TAGS[self]


_HANDOFF_TAGS = {
    HandoffReason.REQUESTED: "Asked for a person",
    HandoffReason.FALLBACK: "Bot stuck",
    HandoffReason.THUMBS_DOWN: "Disliked answer",
    HandoffReason.AGENT: "Taken by agent",
}


class Conversation(models.Model):
    class Status(models.TextChoices):
        BOT = "bot"
        WAITING_FOR_AGENT = "waiting_for_agent"
        WITH_AGENT = "with_agent"
        CLOSED = "closed"

    # Nobody holds a conversation in these: any agent may take it over.
    TAKEABLE = (Status.BOT, Status.WAITING_FOR_AGENT)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BOT)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    # Highest seq handed out; new messages take last_seq + 1 under a row lock.
    last_seq = models.PositiveIntegerField(default=0)
    fallback_streak = models.PositiveSmallIntegerField(default=0)
    handoff_reason = models.CharField(max_length=50, blank=True, choices=HandoffReason.choices)
    offline_message = models.BooleanField(default=False)
    csat = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    waiting_since = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        permissions = [("work_in_dashboard", "Can work in the agent dashboard")]
        indexes = [models.Index(fields=["status", "waiting_since"])]

    def __str__(self) -> str:
        return f"Conversation {self.id} ({self.status})"

    # --- Who may do what (the services enforce these; the dashboard shows the buttons) ---

    def is_held_by(self, user) -> bool:
        return self.status == self.Status.WITH_AGENT and user is not None and self.assigned_agent_id == user.pk

    def can_take(self, user) -> bool:
        """From the queue or from the bot, while nobody holds it."""
        return self.status in self.TAKEABLE and self.assigned_agent_id is None

    def can_hand_back(self, user) -> bool:
        """The holder may; so may any agent while it waits unassigned in the queue."""
        waiting_for_anyone = self.status == self.Status.WAITING_FOR_AGENT and self.assigned_agent_id is None
        return waiting_for_anyone or self.is_held_by(user)

    def can_close(self, user) -> bool:
        """An open conversation that is the user's own, or nobody's."""
        return self.status != self.Status.CLOSED and self.assigned_agent_id in (None, getattr(user, "pk", None))


class AnswerSource(models.TextChoices):
    INTENT = "intent"
    ARTICLE = "article"  # a passage of a help-center article
    FALLBACK = "fallback"


class Message(models.Model):
    class Sender(models.TextChoices):
        VISITOR = "visitor"
        BOT = "bot"
        AGENT = "agent"
        SYSTEM = "system"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    sender = models.CharField(max_length=10, choices=Sender.choices)
    text = models.TextField()
    # Agents' internal notes are stored in the transcript but never sent to the visitor.
    internal = models.BooleanField(default=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    intent = models.CharField(max_length=100, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    out_of_scope = models.BooleanField(default=False)
    model_version = models.ForeignKey(
        "nlu.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_msg_id = models.UUIDField(null=True, blank=True)
    # The bot's reply points at the visitor message it answers; unique, so a
    # task run twice cannot answer twice.
    reply_to = models.OneToOneField("self", null=True, blank=True, on_delete=models.CASCADE, related_name="bot_reply")
    quick_replies = models.JSONField(default=list, blank=True)
    # A bot reply that answers the visitor (one of an intent's responses), not a
    # fallback or a handoff line: thumbs and the rating card are for answers.
    answer = models.BooleanField(default=False)

    # --- Knowledge-base answers (issue 16): where a bot answer came from -------------
    answer_source = models.CharField(max_length=10, choices=AnswerSource.choices, blank=True, db_index=True)
    # The intent's confidence, or the knowledge index's abstention score (asked and
    # abstained too: the fallback keeps the score it fell short with).
    answer_score = models.FloatField(null=True, blank=True)
    knowledge_index = models.ForeignKey(
        "knowledge.KnowledgeIndexVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    citation = models.JSONField(default=dict, blank=True)  # {article_id, title, url} of an article answer
    knowledge_considered = models.JSONField(default=list, blank=True)  # the articles the index weighed
    helpful = models.BooleanField(null=True, blank=True)  # the visitor's "Was this helpful?"
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # By the column, not "conversation": that orders by the conversation's own
        # ordering (-updated_at), a join on every message query, even `.first()`.
        ordering = ["conversation_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="unique_seq_per_conversation"),
            models.UniqueConstraint(
                fields=["conversation", "client_msg_id"],
                condition=Q(client_msg_id__isnull=False),
                name="unique_client_msg_id_per_conversation",
            ),
        ]
        # The sweeper and /healthz look for visitor messages with no bot decision
        # (chatbot/conversations/recovery.py) every few seconds: index only those, a handful.
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(sender="visitor", confidence__isnull=True),
                name="visitor_msg_undecided",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender}#{self.seq}: {self.text[:40]}"


def _weekdays() -> str:
    return "0,1,2,3,4"


class BusinessHours(models.Model):
    """When the support team works (one row for the site, edited in the admin). The
    widget says "Typically replies in ..." and, outside these hours, that the team is away."""

    timezone = models.CharField(max_length=64, default="UTC", help_text="An IANA name, e.g. Europe/Berlin.")
    open_days = models.CharField(
        max_length=20,
        default=_weekdays,
        help_text="Weekdays the team works, 0 = Monday ... 6 = Sunday, separated by commas.",
    )
    opens_at = models.TimeField(default="09:00")
    closes_at = models.TimeField(default="17:00")
    holidays = models.TextField(blank=True, help_text="Days off, one YYYY-MM-DD a line.")
    reply_time_text = models.CharField(
        max_length=100, blank=True, help_text='"2 hours": shown as "Typically replies in 2 hours". Empty: measured.'
    )
    enabled = models.BooleanField(default=False, help_text="Off: the team counts as always in hours.")

    class Meta:
        verbose_name = verbose_name_plural = "business hours"

    def __str__(self) -> str:
        return "Business hours"

    def clean(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from django.core.exceptions import ValidationError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"timezone": f"{self.timezone!r} is not a time zone name."}) from None
        if not all(part.strip() in "0123456" and part.strip() for part in self.open_days.split(",")):
            raise ValidationError({"open_days": "Weekday numbers 0 to 6, separated by commas."})
        for line in self.holidays.splitlines():
            try:
                datetime.date.fromisoformat(line.strip()) if line.strip() else None
            except ValueError:
                raise ValidationError({"holidays": f"{line.strip()!r} is not a YYYY-MM-DD date."}) from None

    @classmethod
    def current(cls) -> "BusinessHours":
        return cls.objects.order_by("pk").first() or cls()

    def is_open(self, now: datetime.datetime) -> bool:
        from zoneinfo import ZoneInfo

        if not self.enabled:
            return True
        local = now.astimezone(ZoneInfo(self.timezone))
        days = {int(part) for part in self.open_days.split(",") if part.strip()}
        holidays = {line.strip() for line in self.holidays.splitlines() if line.strip()}
        if local.weekday() not in days or local.date().isoformat() in holidays:
            return False
        opens, closes = _as_time(self.opens_at), _as_time(self.closes_at)
        return opens <= local.time() < closes


def _as_time(value) -> datetime.time:
    return value if isinstance(value, datetime.time) else datetime.time.fromisoformat(str(value))
