"""API tokens, the log of every call, stored answers to idempotent requests, and
the custom attributes that integrations keep on a visitor."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A bearer token for one integration. Only its SHA-256 is stored; the token
    itself is shown once, when an admin creates it."""

    class Scope(models.TextChoices):
        READ = "read", "read: list and get"
        WRITE = "write", "write: messages, conversation actions, visitors"
        ADMIN = "admin", "admin: intents, examples, model versions"

    name = models.CharField(max_length=100, help_text="Which integration uses it, e.g. 'CRM sync'.")
    # The user the API acts as (an agent's reply is shown with this user's name unless the call names another).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # The first characters of the token, to find its row and to tell tokens apart in lists.
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class ApiCall(models.Model):
    """One API call: who made it and how it ended; never the body."""

    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    # The problem code of an error answer ("" on success).
    code = models.CharField(max_length=50, blank=True)
    duration_ms = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API call"

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


class IdempotentRequest(models.Model):
    """The answer to a POST sent with an Idempotency-Key, replayed when the same
    token sends the same key again."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    # method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="one_request_per_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status or 'running'})"


class VisitorAttributes(models.Model):
    """Custom attributes an integration keeps on a visitor (plan, customer id...).
    Kept beside conversations.Visitor so that app's schema stays as it is."""

    visitor = models.OneToOneField("conversations.Visitor", on_delete=models.CASCADE, related_name="api_attributes")
    attributes = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "visitor attributes"

    def __str__(self) -> str:
        return f"attributes of visitor {self.visitor_id}"
