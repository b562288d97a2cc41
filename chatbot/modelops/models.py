"""The fields every model version shares, and the audit trail of its transitions."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models


class VersionStatus(models.TextChoices):
    QUEUED = "queued"
    TRAINING = "training"
    EVALUATING = "evaluating"
    READY = "ready"
    FAILED = "failed"


OPEN_STATUSES = (VersionStatus.QUEUED, VersionStatus.TRAINING, VersionStatus.EVALUATING)


class VersionBase(models.Model):
    """One trained model of some kind: its artifact, its evaluation and where it is in
    the lifecycle. A concrete kind adds its own fields and two partial unique
    constraints on its scope: one row with ``is_active``, one with ``busy``."""

    Status = VersionStatus
    OPEN_STATUSES = OPEN_STATUSES

    status = models.CharField(max_length=20, choices=VersionStatus.choices, default=VersionStatus.QUEUED)
    # True while queued, training or evaluating; unique per scope while True, so two
    # requests racing in cannot both start a run (on SQLite as on PostgreSQL).
    busy = models.BooleanField(default=False)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=200, blank=True)
    artifact_dir = models.CharField(max_length=500, blank=True)
    # inference.artifact.digest of the artifact when it was trained (or first
    # activated): serving refuses a directory whose content differs (issue 13).
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # The evaluation on the held-out split (with the held-out examples), and the
    # version that was active then, scored on the same split.
    report = models.JSONField(default=dict, blank=True)
    baseline_version = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    baseline_report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Activate when ready, if the regression guard allows it (automatic retraining).
    activate_when_ready = models.BooleanField(default=False)
    # ...and past the guard (`train_model --queue --activate --force`).
    force_activation = models.BooleanField(default=False)
    is_active = models.BooleanField(default=False)
    # Why the last activation passed the guard anyway (forced), or that it was a rollback.
    activation_note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-id"]


class VersionTransition(models.Model):
    """One step of one version's lifecycle: who or what moved it, from where to where, and why."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    # "requested", "claimed", "evaluating", "ready", "failed", "recovered", "activated", "rolled back"
    action = models.CharField(max_length=20)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.content_type.model} {self.object_id}: {self.action} ({self.from_status} -> {self.to_status})"
