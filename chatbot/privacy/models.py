"""What an erasure leaves behind: a record that it happened (no personal data) and
which trained models still hold the erased text until they are retrained."""

from django.conf import settings
from django.db import models


class Erasure(models.Model):
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # How the visitor was found ("email" or "visitor_id"), never the address itself.
    found_by = models.CharField(max_length=20)
    counts = models.JSONField(default=dict)
    # Ready versions trained while the erased text was in their training data.
    intent_versions = models.JSONField(default=list, blank=True)
    reply_versions = models.JSONField(default=list, blank=True)
    retrained_at = models.DateTimeField(
        null=True, blank=True, help_text="Set once new models without the erased text are active."
    )

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"Erasure {self.pk} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def needs_retraining(self) -> bool:
        return self.retrained_at is None and bool(self.intent_versions or self.reply_versions)
