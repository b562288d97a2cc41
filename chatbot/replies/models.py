"""Reply models trained on the agents' own answers, and what agents did with their suggestions."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from chatbot.modelops.models import VersionBase


class ReplyModelVersion(VersionBase):
    """One trained reply model (seq2seq or retrieval): its artifact and how it came to be.
    Its lifecycle (chatbot.modelops) is shared with every other model kind."""

    class Kind(models.TextChoices):
        SEQ2SEQ = "seq2seq"
        RETRIEVAL = "retrieval"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SEQ2SEQ)
    pair_count = models.PositiveIntegerField(default=0)

    class Meta(VersionBase.Meta):
        constraints = [
            # One active model per kind: REPLY_SUGGESTIONS_SOURCE picks between the two.
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_active=True), name="one_active_reply_model_per_kind"
            ),
            # One run per kind at a time, however many requests race in.
            models.UniqueConstraint(fields=["kind"], condition=Q(busy=True), name="one_reply_training_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.pk} ({self.status})"


class SuggestionEvent(models.Model):
    """Suggestions one model showed for one visitor message, and what the agent's next reply did with them."""

    class Outcome(models.TextChoices):
        SHOWN = "shown"  # no reply yet
        SENT_AS_IS = "sent_as_is"
        EDITED = "edited"
        IGNORED = "ignored"

    ACCEPTED = (Outcome.SENT_AS_IS, Outcome.EDITED)

    message = models.ForeignKey("conversations.Message", on_delete=models.CASCADE, related_name="suggestion_events")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    suggestions = models.JSONField(default=list)
    model_version = models.ForeignKey(
        ReplyModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.SHOWN)
    reply = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A task run twice shows the same suggestions once.
            models.UniqueConstraint(fields=["message", "model_version"], name="one_suggestion_event_per_version"),
        ]

    def __str__(self) -> str:
        return f"suggestions for message {self.message_id} ({self.outcome})"

    @property
    def texts(self) -> list[str]:
        return [s["text"] for s in self.suggestions]
