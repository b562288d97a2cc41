"""The lifecycle's verbs, the same for every model kind.

A kind subclasses ModelKind and declares its trainer (``train``), its evaluator
(``load``, ``evaluate``, ``regression_problems``) and the task that runs it; the
request, the claim, the evaluation against the active version, the activation under
a lock with the regression guard, the rollback, the stale-run recovery and the audit
trail come from here. See docs/architecture.md, "Model-version lifecycle".
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from chatbot.audit.services import record
from chatbot.modelops.models import OPEN_STATUSES, VersionBase, VersionStatus, VersionTransition
from inference import artifact

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
# Training is most of a run; evaluation takes the last 10%.
TRAINING_SHARE = 0.9


class TrainingRefused(Exception):
    pass


class ActivationRefused(Exception):
    pass


@dataclass
class Trained:
    """What a kind's trainer hands back: the artifact, the held-out data its
    evaluator scores (empty: too little data to hold any out), and the kind's own
    fields to store on the version (``metrics`` is merged, not replaced)."""

    artifact_dir: Path
    holdout: list = field(default_factory=list)
    fields: dict = field(default_factory=dict)


def check_pinned(artifact_dir: str | Path, recorded: str) -> None:
    """Before a worker loads a version to serve: refuse (inference.artifact.ArtifactError)
    a directory whose content is not the one recorded in the database, such as a file
    swapped on shared storage along with a rewritten checksums.json. A version from
    before hashes were recorded (empty) loads as it is, checked against its checksums."""
    if recorded:
        artifact.check_digest(Path(artifact_dir), recorded)


def read_metrics(artifact_dir: str | Path) -> dict:
    """The metrics.json a trainer wrote beside its artifact (empty when it wrote none)."""
    import json

    metrics_file = Path(artifact_dir) / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.exists() else {}


class ModelKind:
    """One kind of model version. Subclasses set ``model`` and ``label`` and declare
    the methods marked "declared by the kind"; ``scope_fields`` name the fields whose
    values separate versions that do not compete (one active and one busy per scope)."""

    model: type[VersionBase]
    label = "Model"
    scope_fields: tuple[str, ...] = ()
    # What loading a damaged or missing artifact raises.
    artifact_errors: tuple[type[BaseException], ...] = (OSError,)
    force_hint = "Tick 'force' to activate anyway."

    # --- Declared by the kind -------------------------------------------------------

    def train(self, version: VersionBase, progress: Progress, **options) -> Trained:
        """Train ``version`` on the current data; report progress as (fraction, stage)."""
        raise NotImplementedError

    def load(self, artifact_dir: str | Path) -> Any:
        """The loaded model, its checksums verified; raises one of ``artifact_errors``."""
        raise NotImplementedError

    def evaluate(self, loaded: Any, holdout: list) -> dict:
        """The report of ``loaded`` on ``holdout``, with the held-out data in it (see holdout_of)."""
        raise NotImplementedError

    def holdout_of(self, report: dict) -> list:
        """The held-out data back from a report, to score another version on the same."""
        return report.get("holdout", [])

    def regression_problems(self, report: dict, baseline: dict) -> list[str]:
        """Why ``report`` is worse than the active version's ``baseline``; empty: it may serve."""
        return []

    def digest(self, artifact_dir: str | Path) -> str:
        """The artifact's digest (inference.artifact), once ``load`` accepted it; empty
        for a kind whose artifacts carry no checksums.json (nothing to pin)."""
        try:
            return artifact.digest(Path(artifact_dir))
        except artifact.ArtifactError:
            return ""

    def auto_activation_problems(self, version: VersionBase) -> list[str]:
        """Why a version asked to activate when ready (automatic retraining) must wait
        for a person instead, whatever the active version is; empty: it may."""
        return []

    def summary(self, report: dict, loaded: Any) -> dict:
        """Fields to store once evaluated: metrics figures from the report, ids from the model."""
        return {}

    def enqueue(self, version_id: int) -> None:
        """Hand the run to the training queue (a Celery task that calls ``run``)."""
        raise NotImplementedError

    # --- Reading ----------------------------------------------------------------------

    def scope(self, version: VersionBase) -> dict:
        return {name: getattr(version, name) for name in self.scope_fields}

    def active(self, **scope) -> VersionBase | None:
        return self.model.objects.filter(is_active=True, **scope).first()

    # --- Audit --------------------------------------------------------------------------

    def audit(self, version_id: int, action: str, from_status: str, to_status: str, *, user=None, note: str = ""):
        VersionTransition.objects.create(
            content_type=ContentType.objects.get_for_model(self.model),
            object_id=version_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            user=user if user is not None and user.pk is not None else None,
            note=note[:500],
        )

    def transitions(self, version_id: int):
        return VersionTransition.objects.filter(
            content_type=ContentType.objects.get_for_model(self.model), object_id=version_id
        )

    # --- Request ------------------------------------------------------------------------

    def request(self, *, user=None, activate_when_ready: bool = False, force_activation: bool = False, **fields):
        """A queued version, or TrainingRefused while another of its scope is busy. Two
        requests at once: the partial unique constraint on ``busy`` lets one in."""
        scope = {name: fields[name] for name in self.scope_fields}
        self.recover_stale_runs(**scope)
        running = self.model.objects.filter(busy=True, **scope).first()
        if running is not None:
            raise TrainingRefused(f"{self.label} {running} is still being trained; wait for it to finish.")
        try:
            with transaction.atomic():
                version = self.model.objects.create(
                    busy=True,
                    created_by=user,
                    activate_when_ready=activate_when_ready,
                    force_activation=force_activation,
                    **fields,
                )
                self.audit(version.pk, "requested", "", VersionStatus.QUEUED, user=user)
        except IntegrityError:
            raise TrainingRefused(
                f"Another {self.label.lower()} is being trained right now; wait for it to finish."
            ) from None
        return version

    def start(self, **request_options) -> VersionBase:
        """request, then the run on the training queue once the row is committed."""
        version = self.request(**request_options)
        transaction.on_commit(lambda: self.enqueue(version.pk))
        return version

    # --- Recovery -----------------------------------------------------------------------

    def recover_stale_runs(self, *, abandoned: bool = False, **scope) -> int:
        """A run whose worker died or hit the training time limit leaves its version
        busy: past the limit (with a minute's margin) it is failed, so the scope can
        train again and a redelivered task does not wait on it. With `abandoned` (a
        command that runs while no worker does, such as bootstrap_demo) every busy run
        is failed: none of them can finish any more."""
        stale = self.model.objects.filter(busy=True, **scope)
        if abandoned:
            why = "no worker was running to finish it"
        else:
            limit = timezone.now() - timedelta(seconds=settings.CELERY_TRAINING_TIME_LIMIT + 60)
            stale = stale.filter(Q(started_at__lt=limit) | Q(started_at__isnull=True, created_at__lt=limit))
            why = "no result within the training time limit"
        recovered = 0
        for pk, status in stale.values_list("pk", "status"):
            # Conditional on still being busy: a run that finished meanwhile keeps its result.
            changed = self.model.objects.filter(pk=pk, busy=True, status=status).update(
                busy=False,
                status=VersionStatus.FAILED,
                stage="failed",
                finished_at=timezone.now(),
                error=f"Interrupted: {why}.",
            )
            if changed:
                recovered += 1
                self.audit(pk, "recovered", status, VersionStatus.FAILED, note=why)
                log.warning("%s v%s recovered: %s", self.label, pk, why)
        return recovered

    # --- Run: claim, train, evaluate ------------------------------------------------------

    def _set_progress(self, version_id: int, fraction: float, stage: str) -> None:
        self.model.objects.filter(pk=version_id).update(
            progress=round(max(0.0, min(fraction, 1.0)), 4), stage=stage[:200]
        )

    def _move(self, version_id: int, action: str, to_status: str, **fields) -> bool:
        """From an open status to ``to_status``; False when the run was recovered meanwhile."""
        current = self.model.objects.filter(pk=version_id).values_list("status", flat=True).first()
        changed = self.model.objects.filter(
            pk=version_id, status__in=(VersionStatus.TRAINING, VersionStatus.EVALUATING)
        ).update(status=to_status, **fields)
        if changed:
            self.audit(version_id, action, current or "", to_status, note=fields.get("error", ""))
        return bool(changed)

    def run(self, version_id: int, progress: Progress | None = None, **train_options) -> VersionBase:
        """Claim the queued version, train it, evaluate it and the active version on the
        same held-out data, and mark it ready (then activate it if asked) or failed.
        Safe to run twice: only a queued version is claimed."""
        version = self.model.objects.get(pk=version_id)
        self.recover_stale_runs(**self.scope(version))
        claimed = self.model.objects.filter(pk=version_id, status=VersionStatus.QUEUED).update(
            status=VersionStatus.TRAINING, started_at=timezone.now(), progress=0.0, stage="starting"
        )
        if not claimed:
            return self.model.objects.get(pk=version_id)  # already run (a redelivered task) or recovered
        self.audit(version_id, "claimed", VersionStatus.QUEUED, VersionStatus.TRAINING)
        version.refresh_from_db()
        started = time.perf_counter()

        def report(fraction: float, stage: str) -> None:
            self._set_progress(version_id, fraction * TRAINING_SHARE, stage)
            if progress is not None:
                progress(fraction * TRAINING_SHARE, stage)

        try:
            trained = self.train(version, report, **train_options)
            self._move(
                version_id,
                "evaluating",
                VersionStatus.EVALUATING,
                progress=TRAINING_SHARE,
                stage="evaluating on the held-out split",
            )
            if progress is not None:
                progress(TRAINING_SHARE, "evaluating")
            loaded = self.load(trained.artifact_dir)
            sha256 = self.digest(trained.artifact_dir)
            new_report = self.evaluate(loaded, trained.holdout) if trained.holdout else {}
            baseline, baseline_report = self._baseline_report(version, trained.holdout)
            fields = dict(trained.fields)
            extra = self.summary(new_report, loaded)
            metrics = {**fields.pop("metrics", {}), **extra.pop("metrics", {})}
            metrics["total_seconds"] = round(time.perf_counter() - started, 2)
            fields.update(extra, metrics=metrics)
        except Exception as exc:  # the version records why; the worker lives on
            log.exception("training of %s v%s failed", self.label.lower(), version_id)
            self._move(
                version_id,
                "failed",
                VersionStatus.FAILED,
                busy=False,
                stage="failed",
                finished_at=timezone.now(),
                error=f"{type(exc).__name__}: {exc}"[:5000],
            )
            return self.model.objects.get(pk=version_id)
        finished = self._move(
            version_id,
            "ready",
            VersionStatus.READY,
            busy=False,
            progress=1.0,
            stage="ready",
            finished_at=timezone.now(),
            artifact_dir=str(trained.artifact_dir),
            artifact_sha256=sha256,
            report=new_report,
            baseline_version=baseline,
            baseline_report=baseline_report,
            **fields,
        )
        if progress is not None:
            progress(1.0, "ready")
        version = self.model.objects.get(pk=version_id)
        held = [] if version.force_activation else self.auto_activation_problems(version)
        if finished and version.activate_when_ready and held:
            note = "Not activated automatically: " + "; ".join(held) + ". " + self.force_hint
            self.audit(version_id, "not activated", VersionStatus.READY, VersionStatus.READY, note=note)
            log.warning("%s v%s was not activated: %s", self.label, version_id, note)
        elif finished and version.activate_when_ready:
            try:
                version = self.activate(version_id, user=version.created_by, force=version.force_activation)
            except ActivationRefused as exc:
                log.warning("%s v%s was not activated: %s", self.label, version_id, exc)
        return version

    def _score(self, version: VersionBase, holdout: list) -> dict:
        try:
            return self.evaluate(self.load(version.artifact_dir), holdout)
        except self.artifact_errors as exc:
            log.warning("the active %s could not be evaluated: %s", version, exc)
            return {}

    def _baseline_report(self, version: VersionBase, holdout: list) -> tuple[VersionBase | None, dict]:
        """The active version of the scope and its report on the same held-out data."""
        baseline = self.active(**self.scope(version))
        if baseline is None or baseline.pk == version.pk or not holdout:
            return baseline, {}
        return baseline, self._score(baseline, holdout)

    def comparison_with_active(self, version: VersionBase) -> tuple[VersionBase | None, dict]:
        """The active version and its report on this version's held-out data;
        re-scored when the active version changed since this one was evaluated."""
        active = self.active(**self.scope(version))
        if active is None or active.pk == version.pk or not version.report:
            return active, {}
        if version.baseline_version_id == active.pk:
            return active, version.baseline_report
        holdout = self.holdout_of(version.report)
        return active, (self._score(active, holdout) if holdout else {})

    # --- Activation and rollback ---------------------------------------------------------

    def _check_artifact(self, version: VersionBase) -> str:
        """The artifact's digest, once it loads (checksums verified: a damaged model
        never serves) and is the one recorded when it was trained."""
        try:
            self.load(version.artifact_dir)
        except (*self.artifact_errors, artifact.ArtifactError) as exc:
            raise ActivationRefused(f"{version}'s artifact is damaged: {exc}") from exc
        sha256 = self.digest(version.artifact_dir)
        if version.artifact_sha256 and sha256 != version.artifact_sha256:
            raise ActivationRefused(
                f"{version}'s artifact was changed since it was trained (its files do not hash to the recorded "
                "digest); train a new version."
            )
        return sha256

    def activate(self, version_id: int, user=None, *, force: bool = False) -> VersionBase:
        """Make a ready version the one that serves its scope; workers pick it up on their
        next use. Refused for a version that is not ready, whose artifact does not load,
        or that the regression guard finds worse than the active one (unless forced)."""
        version = self.model.objects.get(pk=version_id)
        if version.status != VersionStatus.READY:
            raise ActivationRefused(f"{version} is not ready and cannot be activated.")
        sha256 = self._check_artifact(version)
        active, baseline = self.comparison_with_active(version)
        problems = self.regression_problems(version.report, baseline) if baseline and version.report else []
        if problems and not force:
            raise ActivationRefused(
                f"{version} is worse than the active {active}: " + "; ".join(problems) + ". " + self.force_hint
            )
        note = ("Forced past: " + "; ".join(problems)) if problems else ""
        return self._make_active(version_id, user, note=note, action="activated", forced=bool(problems), sha256=sha256)

    def roll_back(self, version_id: int, user=None) -> VersionBase:
        """Go back to a version that served before: no guard (it served), but its
        artifact must still load."""
        version = self.model.objects.get(pk=version_id)
        if version.status != VersionStatus.READY or version.activated_at is None:
            raise ActivationRefused(f"{version} never served, so it is not a rollback target; activate it instead.")
        if version.is_active:
            raise ActivationRefused(f"{version} is already active.")
        sha256 = self._check_artifact(version)
        previous = self.active(**self.scope(version))
        note = f"Rolled back from {previous}." if previous else "Rolled back."
        return self._make_active(version_id, user, note=note, action="rolled back", sha256=sha256)

    def _make_active(
        self, version_id: int, user, *, note: str, action: str, forced: bool = False, sha256: str = ""
    ) -> VersionBase:
        try:
            with transaction.atomic():
                version = self.model.objects.select_for_update().get(pk=version_id)
                if version.status != VersionStatus.READY:
                    raise ActivationRefused(f"{version} is not ready and cannot be activated.")
                scope = self.model.objects.filter(**self.scope(version))
                previous = scope.filter(is_active=True).exclude(pk=version_id).values_list("pk", flat=True).first()
                scope.filter(is_active=True).exclude(pk=version_id).update(is_active=False)
                scope.filter(pk=version_id).update(
                    is_active=True, activated_at=timezone.now(), activated_by=user, activation_note=note[:500]
                )
                if sha256 and not version.artifact_sha256:  # a version from before digests were recorded
                    scope.filter(pk=version_id).update(artifact_sha256=sha256)
                self.audit(version_id, action, VersionStatus.READY, VersionStatus.READY, user=user, note=note)
                staff_action = "model.rollback" if action == "rolled back" else "model.activate"
                record(
                    user,
                    "model.force_activate" if forced else staff_action,
                    version,
                    kind=self.model._meta.label_lower,
                    previous_version=previous,
                    note=note[:500],
                )
                if user is not None and user.pk is not None:
                    LogEntry.objects.log_actions(
                        user_id=user.pk,
                        queryset=self.model.objects.filter(pk=version_id),
                        action_flag=CHANGE,
                        change_message=f"Activated. {note}".strip(),
                        single_object=True,
                    )
        except IntegrityError:
            # One active per scope: another activation committed between our reads.
            raise ActivationRefused("Another version was activated at the same moment; try again.") from None
        who = f" by {user}" if user is not None else ""  # None: a command or a task, not a person
        log.info("%s", f"{self.label} v{version_id} {action}{who}. {note}".strip())
        return self.model.objects.get(pk=version_id)


__all__ = [
    "OPEN_STATUSES",
    "ActivationRefused",
    "ModelKind",
    "Trained",
    "TrainingRefused",
    "VersionStatus",
    "read_metrics",
]
