"""Who wants which events, each event, and each event's delivery to each subscriber."""

import secrets
import uuid

from django.db import models


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class EventType(models.TextChoices):
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_HANDED_OFF = "conversation.handed_off"
    CONVERSATION_ASSIGNED = "conversation.assigned"
    CONVERSATION_CLOSED = "conversation.closed"
    MESSAGE_CREATED = "message.created"
    CSAT_RECEIVED = "csat.received"
    MODEL_VERSION_ACTIVATED = "model_version.activated"
    TRAINING_FAILED = "training.failed"


class Subscription(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2000, help_text="https:// (http:// only in DEBUG).")
    events = models.JSONField(default=list)
    secret = models.CharField(
        max_length=100, default=new_secret, help_text="Shared with the receiver to check signatures."
    )
    is_active = models.BooleanField(default=True)
    # Events in a row that could not be delivered; reset by any success.
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "webhook subscription"

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """Stored in the transaction that caused it: a change is never committed without its event."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=50, choices=EventType.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "webhook event"

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # An attempt runs only once this time has passed; taking an attempt moves it past the
    # attempt's timeout, so two workers never send the same delivery at once.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "subscription"], name="one_delivery_per_subscriber")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event.type} to {self.subscription} ({self.status})"
