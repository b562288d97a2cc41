"""What the reports read: one outcome per conversation, stored when it is final
(docs/analytics.md has the definitions), so a report reads indexed columns of
this table instead of scanning messages."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Outcome(models.TextChoices):
    RESOLVED_BY_BOT = "resolved_by_bot", "Resolved by the bot"
    HANDED_OFF = "handed_off", "Handed off"
    ABANDONED = "abandoned", "Abandoned while waiting"
    UNANSWERED = "unanswered", "Unanswered"
    # No visitor message at all: stored so it is not looked at again, never counted.
    NO_VISITOR_MESSAGE = "no_visitor_message", "No visitor message"


COUNTED = (Outcome.RESOLVED_BY_BOT, Outcome.HANDED_OFF, Outcome.ABANDONED, Outcome.UNANSWERED)


class ConversationOutcome(models.Model):
    conversation = models.OneToOneField(
        "conversations.Conversation", primary_key=True, on_delete=models.CASCADE, related_name="outcome"
    )
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    # Reports count final outcomes only. A handoff sets `handed_off` at once but
    # not final (it may still end abandoned); new visitor activity reopens one.
    final = models.BooleanField(default=False)
    # The first handoff, remembered even when an agent hands the conversation back to the bot.
    handoff_reason = models.CharField(max_length=50, blank=True)
    handed_off_at = models.DateTimeField(null=True, blank=True)
    # Copied from the conversation and its messages when the outcome was computed.
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    model_version = models.ForeignKey(
        "nlu.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    visitor_messages = models.PositiveIntegerField(default=0)
    bot_answers = models.PositiveIntegerField(default=0)
    fallbacks = models.PositiveIntegerField(default=0)
    thumbs_down = models.BooleanField(default=False)
    csat = models.PositiveSmallIntegerField(null=True, blank=True)
    first_response_s = models.FloatField(null=True, blank=True)
    resolution_s = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Every report filters final outcomes by start time.
            models.Index(fields=["started_at"], name="analytics_final_started", condition=Q(final=True)),
            models.Index(fields=["outcome", "final"], name="analytics_outcome_final"),
            models.Index(fields=["final"], name="analytics_open", condition=Q(final=False)),
        ]
        permissions = [("view_reports", "Can view the analytics reports")]

    def __str__(self) -> str:
        return f"{self.conversation_id}: {self.outcome or 'open'}{'' if self.final else ' (not final)'}"


class UnansweredMessage(models.Model):
    """A visitor message the bot fell back on or answered with low confidence (its
    review-inbox feedback), with its text: what top fallback messages and top
    unanswered questions group, read by time without joining the messages."""

    feedback = models.OneToOneField("nlu.Feedback", primary_key=True, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=20)
    text = models.TextField()
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.source}: {self.text[:40]}"


class SeedRun(models.Model):
    """One run of `seed_analytics`: the Reports page says so when demo data are in the database."""

    conversations = models.PositiveIntegerField()
    demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"seed of {self.conversations} conversations ({'demo' if self.demo else 'bench'})"


class OutcomeHour(models.Model):
    """The final counted outcomes of one UTC hour, summed per model version, outcome,
    handoff reason, agent and CSAT score: what a report reads on PostgreSQL instead of
    every outcome of the range (chatbot/analytics/rollup.py keeps it; a database
    trigger notes each hour whose outcomes changed)."""

    hour = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    model_version = models.ForeignKey(
        "nlu.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handoff_reason = models.CharField(max_length=50, blank=True)
    csat = models.PositiveSmallIntegerField(null=True, blank=True)
    conversations = models.PositiveIntegerField()
    bot_answers = models.PositiveIntegerField()
    fallbacks = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["hour"], name="analytics_outcomehour_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.outcome}: {self.conversations}"


class StaleHour(models.Model):
    """An hour whose outcomes changed since OutcomeHour was computed (written by the
    trigger, in the transaction of the change); rollup.refresh() recomputes it."""

    hour = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h"
