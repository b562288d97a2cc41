"""Visitors, their conversations and every message in them."""

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

    def __str__(self) -> str:
        return self.name or self.email or f"Visitor {self.pk}"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)


class Conversation(models.Model):
    class Status(models.TextChoices):
        BOT = "bot"
        WAITING_FOR_AGENT = "waiting_for_agent"
        WITH_AGENT = "with_agent"
        CLOSED = "closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BOT)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    # Highest seq handed out; new messages take last_seq + 1 under a row lock.
    last_seq = models.PositiveIntegerField(default=0)
    fallback_streak = models.PositiveSmallIntegerField(default=0)
    handoff_reason = models.CharField(max_length=50, blank=True)
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="unique_seq_per_conversation"),
            models.UniqueConstraint(
                fields=["conversation", "client_msg_id"],
                condition=Q(client_msg_id__isnull=False),
                name="unique_client_msg_id_per_conversation",
            ),
        ]
        # The sweeper and /healthz look for visitor messages with no bot decision
        # (chatbot/ops/recovery.py) every few seconds: index only those, a handful.
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(sender="visitor", confidence__isnull=True),
                name="visitor_msg_undecided",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender}#{self.seq}: {self.text[:40]}"
