"""The improvement loop as verbs: review feedback into training data, train and
evaluate a model version, activate it (or roll back) without a restart."""

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from chatbot.nlu import evaluation, training_data
from chatbot.nlu.models import Feedback, Intent, ModelVersion, TrainingExample
from chatbot.nlu.pii import mask_pii
from chatbot.nlu.training_data import ImportFailed, ImportReport  # noqa: F401 (part of this module's API)

log = logging.getLogger(__name__)

DEMO_INTENTS = Path(__file__).resolve().parent / "demo" / "store_intents.yml"

# Older callers know the import error under this name.
ImportError_ = ImportFailed


class TrainingRefused(Exception):
    pass


class ActivationRefused(Exception):
    pass


class ReviewRefused(Exception):
    pass


# --- Training data ------------------------------------------------------------


def import_intents_yaml(path: Path, source: str = TrainingExample.Source.IMPORT) -> ImportReport:
    """Intents with examples and responses from the store YAML schema (the demo data)."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read the file ({exc.strerror}).") from exc
    return training_data.import_store_yaml(content, source=source)


def import_examples_csv(content: bytes, source: str = TrainingExample.Source.IMPORT) -> ImportReport:
    return training_data.import_training_data(content, "csv", source=source)


def training_snapshot() -> list[tuple[str, str]]:
    """(text, intent) of every training example, in a stable order."""
    return list(TrainingExample.objects.order_by("id").values_list("text", "intent__name"))


def data_hash(pairs: list[tuple[str, str]]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for text, intent in sorted(pairs):
        digest.update(f"{intent}\t{text}\n".encode())
    return digest.hexdigest()


# --- Feedback review ------------------------------------------------------------


def note_low_confidence(
    message_id: int, *, confidence: float | None = None, out_of_scope: bool | None = None
) -> Feedback | None:
    """Send an answered visitor message to review when the bot answered it with
    less confidence than review_confidence_threshold() (fallbacks are there already).

    The inference task passes the prediction it has in hand, so the common case,
    a confident answer, costs no query."""
    from chatbot.conversations.models import Message

    threshold = review_confidence_threshold()
    if out_of_scope or (confidence is not None and confidence >= threshold):
        return None
    message = Message.objects.filter(pk=message_id, sender=Message.Sender.VISITOR).first()
    if (
        message is None
        or message.confidence is None
        or message.out_of_scope
        or message.confidence >= threshold
        or Feedback.objects.filter(message_id=message_id, source=Feedback.Source.FALLBACK).exists()
    ):
        return None
    feedback, _ = Feedback.objects.get_or_create(
        message_id=message_id,
        source=Feedback.Source.LOW_CONFIDENCE,
        defaults={"predicted_intent": message.intent, "confidence": message.confidence},
    )
    return feedback


def review_confidence_threshold() -> float:
    """Below what confidence an answer goes to review: the active model's own point
    where validation accuracy drops under its target (config.review_threshold, stored
    by inference training), else REVIEW_CONFIDENCE_THRESHOLD (no model loaded in this
    process, or one trained before the point was stored). Reads the model this
    worker holds in memory, so it costs no query."""
    from chatbot.nlu import serving

    loaded = serving._current
    point = getattr(getattr(getattr(loaded, "predictor", None), "config", None), "review_threshold", None)
    return float(point) if point is not None else settings.REVIEW_CONFIDENCE_THRESHOLD


def suggested_label(feedback: Feedback) -> str:
    """What a reviewer most likely wants: the agent's correction, else (for the
    softer signals) the model's guess; nothing for a fallback or a thumbs down."""
    if feedback.suggested_intent:
        return feedback.suggested_intent
    if feedback.source == Feedback.Source.LOW_CONFIDENCE and feedback.predicted_intent != "oos":
        return feedback.predicted_intent
    return ""


def accept_feedback(
    feedback_id: int, intent_name: str, *, user=None, text: str | None = None, create_intent: bool = False
) -> TrainingExample:
    """The feedback's message, PII masked, becomes a training example of the intent.
    Every other pending feedback on the same message is settled with it."""
    intent_name = intent_name.strip()
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().select_related("message").get(pk=feedback_id)
        if feedback.status == Feedback.Status.ACCEPTED and feedback.training_example_id:
            return feedback.training_example
        if create_intent:
            if not training_data.valid_intent_name(intent_name):
                raise ReviewRefused(f"{intent_name!r} is not a valid intent name (letters, digits, _ or -).")
            intent, _ = Intent.objects.get_or_create(name=intent_name)
        else:
            intent = Intent.objects.filter(name=intent_name).first()
            if intent is None:
                raise ReviewRefused(f"There is no intent {intent_name!r}; tick 'new intent' to create it.")
        masked = " ".join(mask_pii(text if text is not None else feedback.message.text).split())
        if not masked:
            raise ReviewRefused("The text is empty.")
        masked = masked[: training_data.MAX_TEXT]
        example = TrainingExample.objects.filter(text=masked).select_related("intent").first()
        if example is None:
            example = TrainingExample.objects.create(intent=intent, text=masked, source=TrainingExample.Source.FEEDBACK)
        elif example.intent_id != intent.pk:
            # The reviewer's label wins over an older one: it is the newer judgement.
            example.intent = intent
            example.source = TrainingExample.Source.FEEDBACK
            example.save(update_fields=["intent", "source"])
        Feedback.objects.filter(message_id=feedback.message_id, status=Feedback.Status.PENDING).update(
            status=Feedback.Status.ACCEPTED, reviewed_at=timezone.now(), reviewed_by=user, training_example=example
        )
        Feedback.objects.filter(pk=feedback_id).update(
            status=Feedback.Status.ACCEPTED, reviewed_at=timezone.now(), reviewed_by=user, training_example=example
        )
    return example


def ignore_feedback(feedback_ids, *, user=None) -> int:
    return Feedback.objects.filter(pk__in=list(feedback_ids), status=Feedback.Status.PENDING).update(
        status=Feedback.Status.IGNORED, reviewed_at=timezone.now(), reviewed_by=user
    )


# --- Model versions -------------------------------------------------------------


def request_training(*, mode: str = "fast", user=None, activate_when_ready: bool = False) -> ModelVersion:
    """A queued ModelVersion, or TrainingRefused while another one is queued,
    training or evaluating. Two requests at once: the unique `busy` row lets one in."""
    if mode not in ("fast", "full"):
        raise TrainingRefused(f"Unknown training mode {mode!r}; use fast or full.")
    _fail_stale_runs()
    running = ModelVersion.objects.filter(busy=True).first()
    if running is not None:
        raise TrainingRefused(f"Model {running} is still being trained; wait for it to finish.")
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                mode=mode, created_by=user, busy=True, activate_when_ready=activate_when_ready
            )
    except IntegrityError:
        raise TrainingRefused("Another model is being trained right now; wait for it to finish.") from None


def _fail_stale_runs() -> None:
    """A run whose worker died (past the training time limit) must not block training forever."""
    limit = timezone.now() - timedelta(seconds=settings.CELERY_TRAINING_TIME_LIMIT + 60)
    ModelVersion.objects.filter(busy=True, created_at__lt=limit).update(
        busy=False, status=ModelVersion.Status.FAILED, error="Interrupted: no result within the training time limit."
    )


def start_training(*, mode: str = "fast", user=None, activate_when_ready: bool = False) -> ModelVersion:
    """request_training, then the run on the training queue once the row is committed."""
    from chatbot.nlu.tasks import train_model_version

    version = request_training(mode=mode, user=user, activate_when_ready=activate_when_ready)
    transaction.on_commit(lambda: train_model_version.delay(version.pk))
    return version


def _set_progress(version_id: int, fraction: float, stage: str) -> None:
    ModelVersion.objects.filter(pk=version_id).update(
        progress=round(max(0.0, min(fraction, 1.0)), 4), stage=stage[:200]
    )


def _finish(version_id: int, **fields) -> None:
    ModelVersion.objects.filter(pk=version_id).update(busy=False, finished_at=timezone.now(), **fields)


def train_version(
    version_id: int, progress: Callable[[float, str], None] | None = None, **train_options
) -> ModelVersion:
    """Train the queued version on the training part of the data, evaluate it and
    the active version on the held-out part, and mark it ready or failed.

    The served model is the one that was evaluated: trained without the held-out
    ~20%, so its figures are honest (see docs/benchmarks.md).
    """
    from inference import Example, Predictor, TrainConfig, train_intent_model

    claimed = ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.QUEUED).update(
        status=ModelVersion.Status.TRAINING, started_at=timezone.now(), progress=0.0, stage="starting"
    )
    version = ModelVersion.objects.get(pk=version_id)
    if not claimed:
        return version  # already run (a redelivered task) or cancelled
    pairs = training_snapshot()
    train, holdout = evaluation.split_examples(pairs)
    out_dir = Path(settings.MODEL_DIR) / f"intent-v{version_id}"
    started = time.perf_counter()

    def report(fraction: float, stage: str) -> None:
        # Training is most of the time; evaluation takes the last 10%.
        _set_progress(version_id, fraction * 0.9, stage)
        if progress is not None:
            progress(fraction * 0.9, stage)

    try:
        config = TrainConfig(mode=version.mode, **{**settings.NLU_TRAIN_OPTIONS, **train_options})
        path = train_intent_model(
            [Example(text=t, intent=i) for t, i in train], out_dir, config=config, progress=report
        )
        train_seconds = time.perf_counter() - started
        ModelVersion.objects.filter(pk=version_id).update(
            status=ModelVersion.Status.EVALUATING, progress=0.9, stage="evaluating on the held-out split"
        )
        if progress is not None:
            progress(0.9, "evaluating")
        predictor = Predictor.load(path)
        new_report = evaluation.evaluate_on(predictor, holdout) if holdout else {}
        baseline, baseline_report = _baseline_report(holdout)
        metrics = _read_metrics(path)
        metrics.update(
            train_examples=len(train),
            holdout_examples=len(holdout),
            train_seconds=round(train_seconds, 2),
            total_seconds=round(time.perf_counter() - started, 2),
        )
        if new_report:
            metrics.update(holdout_accuracy=new_report["accuracy"], holdout_macro_f1=new_report["macro_f1"])
    except Exception as exc:
        log.exception("training of model v%s failed", version_id)
        _finish(
            version_id, status=ModelVersion.Status.FAILED, stage="failed", error=f"{type(exc).__name__}: {exc}"[:5000]
        )
        return ModelVersion.objects.get(pk=version_id)
    _finish(
        version_id,
        status=ModelVersion.Status.READY,
        progress=1.0,
        stage="ready",
        artifact_dir=str(path),
        model_id=predictor.model_id,
        data_hash=data_hash(pairs),
        example_count=len(pairs),
        metrics=metrics,
        report=new_report,
        baseline_version=baseline,
        baseline_report=baseline_report,
    )
    if progress is not None:
        progress(1.0, "ready")
    version = ModelVersion.objects.get(pk=version_id)
    if version.activate_when_ready:
        try:
            version = activate_model_version(version_id, user=version.created_by)
        except ActivationRefused as exc:
            log.warning("model v%s was not activated: %s", version_id, exc)
    return version


def _baseline_report(holdout: list[tuple[str, str]]) -> tuple[ModelVersion | None, dict]:
    """The active version and its report on the same held-out examples."""
    from inference import ArtifactError, Predictor

    baseline = active_version()
    if baseline is None or not holdout:
        return baseline, {}
    try:
        return baseline, evaluation.evaluate_on(Predictor.load(baseline.artifact_dir), holdout)
    except (ArtifactError, OSError) as exc:
        log.warning("the active version %s could not be evaluated: %s", baseline, exc)
        return baseline, {}


def _read_metrics(path: Path) -> dict:
    import json

    metrics_file = Path(path) / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.exists() else {}


def comparison_with_active(version: ModelVersion) -> tuple[ModelVersion | None, dict]:
    """The active version and its report on this version's held-out examples;
    re-scored when the active version changed since this one was evaluated."""
    active = active_version()
    if active is None or active.pk == version.pk or not version.report:
        return active, {}
    if version.baseline_version_id == active.pk:
        return active, version.baseline_report
    from inference import ArtifactError, Predictor

    holdout = [tuple(pair) for pair in version.report.get("holdout", [])]
    try:
        return active, evaluation.evaluate_on(Predictor.load(active.artifact_dir), holdout)
    except (ArtifactError, OSError) as exc:
        log.warning("the active version %s could not be evaluated: %s", active, exc)
        return active, {}


def activate_model_version(version_id: int, user=None, *, force: bool = False) -> ModelVersion:
    """Make a ready version the one that answers; serving workers pick it up on
    their next message. Refused for a version that is not ready, whose artifact
    does not load, or that is worse than the active one (unless forced)."""
    from inference import ArtifactError, Predictor

    version = ModelVersion.objects.get(pk=version_id)
    if version.status != ModelVersion.Status.READY:
        raise ActivationRefused(f"{version} is not ready and cannot be activated.")
    try:
        Predictor.load(version.artifact_dir)  # checksums verified; a damaged model never serves
    except (ArtifactError, OSError) as exc:
        raise ActivationRefused(f"{version}'s artifact is damaged: {exc}") from exc
    active, baseline = comparison_with_active(version)
    problems = evaluation.activation_problems(version.report, baseline)
    if problems and not force:
        raise ActivationRefused(
            f"{version} is worse than the active {active}: "
            + "; ".join(problems)
            + ". Tick 'force' to activate anyway."
        )
    note = ("Forced past: " + "; ".join(problems)) if problems else ""
    return _make_active(version_id, user, note=note)


def roll_back_to(version_id: int, user=None) -> ModelVersion:
    """Go back to a version that served before: no quality rules (it served), but
    its artifact must still load."""
    from inference import ArtifactError, Predictor

    version = ModelVersion.objects.get(pk=version_id)
    if version.status != ModelVersion.Status.READY or version.activated_at is None:
        raise ActivationRefused(f"{version} never served, so it is not a rollback target; activate it instead.")
    if version.is_active:
        raise ActivationRefused(f"{version} is already active.")
    try:
        Predictor.load(version.artifact_dir)
    except (ArtifactError, OSError) as exc:
        raise ActivationRefused(f"{version}'s artifact is damaged: {exc}") from exc
    previous = active_version()
    return _make_active(version_id, user, note=f"Rolled back from {previous}." if previous else "Rolled back.")


def _make_active(version_id: int, user, note: str) -> ModelVersion:
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version_id)
        if version.status != ModelVersion.Status.READY:
            raise ActivationRefused(f"{version} is not ready and cannot be activated.")
        ModelVersion.objects.filter(is_active=True).exclude(pk=version_id).update(is_active=False)
        ModelVersion.objects.filter(pk=version_id).update(
            is_active=True, activated_at=timezone.now(), activated_by=user, activation_note=note[:500]
        )
        if user is not None and user.pk is not None:
            LogEntry.objects.log_actions(
                user_id=user.pk,
                queryset=ModelVersion.objects.filter(pk=version_id),
                action_flag=CHANGE,
                change_message=f"Activated. {note}".strip(),
                single_object=True,
            )
    log.info("model v%s activated by %s. %s", version_id, user, note)
    return ModelVersion.objects.get(pk=version_id)


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


# --- Nightly retraining ---------------------------------------------------------


def feedback_accepted_since_last_training() -> int:
    last = ModelVersion.objects.exclude(status=ModelVersion.Status.FAILED).aggregate(at=Max("created_at"))["at"]
    accepted = Feedback.objects.filter(status=Feedback.Status.ACCEPTED)
    return (accepted.filter(reviewed_at__gt=last) if last else accepted).count()


def retrain_if_feedback() -> ModelVersion | None:
    """The nightly run: a new version when reviewers accepted feedback since the
    last one, activated when ready only if the activation rules allow it."""
    if not feedback_accepted_since_last_training():
        return None
    try:
        return start_training(mode="fast", activate_when_ready=True)
    except TrainingRefused as exc:
        log.info("nightly retrain skipped: %s", exc)
        return None
