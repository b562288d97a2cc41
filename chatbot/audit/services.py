"""Writing the audit log: the one function every app calls."""

from django.db import models

from chatbot.audit.models import AuditEntry


def record(actor, action: str, target: models.Model | str | None = None, **details) -> AuditEntry:
    """Log that `actor` (a user, or None for the system) did `action` to `target`
    (a model instance, a free-form label, or nothing). `details` must be JSON-able
    and must not hold personal data beyond an id: the log outlives erasures."""
    entry = AuditEntry(action=action, details=details)
    if actor is not None and getattr(actor, "is_authenticated", False):
        entry.actor = actor
        entry.actor_name = actor.get_username()
    if isinstance(target, models.Model):
        entry.target_type = target._meta.label_lower
        entry.target_id = str(target.pk)
        entry.target_repr = str(target)[:200]
    elif target:
        entry.target_repr = str(target)[:200]
    entry.save()
    return entry
