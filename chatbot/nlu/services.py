"""The improvement loop as verbs: review feedback into training data, train and
evaluate a model version, activate it (or roll back) without a restart."""

import logging
import time
from collections.abc import Callable
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from chatbot.modelops.lifecycle import (  # the refusals keep their old address here
    ActivationRefused,  # noqa: F401 (raised by the lifecycle, caught by callers under this name)
    ModelKind,
    Trained,
    TrainingRefused,
    read_metrics,
)
from chatbot.nlu import evaluation, training_data
from chatbot.nlu.models import Feedback, Intent, ModelVersion, TrainingExample
from chatbot.nlu.pii import mask_pii
from chatbot.nlu.training_data import ImportFailed, ImportReport  # noqa: F401 (part of this module's API)

log = logging.getLogger(__name__)

DEMO_INTENTS = Path(__file__).resolve().parent / "demo" / "store_intents.yml"

# Older callers know the import error under this name.
ImportError_ = ImportFailed


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
    # The message model by name: conversations calls into nlu, not the other way round.
    Message = apps.get_model("conversations", "Message")

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
    """Ignore the items and, with them, every other pending reason on the same messages
    (the review inbox shows one item per message)."""
    messages = Feedback.objects.filter(pk__in=list(feedback_ids)).values("message_id")
    return Feedback.objects.filter(message_id__in=messages, status=Feedback.Status.PENDING).update(
        status=Feedback.Status.IGNORED, reviewed_at=timezone.now(), reviewed_by=user
    )


# --- Model versions -------------------------------------------------------------


class IntentModels(ModelKind):
    """The intent model kind: its trainer and evaluator; chatbot.modelops does the rest."""

    model = ModelVersion
    label = "Model"

    @property
    def artifact_errors(self):
        from inference import ArtifactError

        return (ArtifactError, OSError)

    def train(self, version: ModelVersion, progress, **train_options) -> Trained:
        """Trained on the training part of the data only: the served model is the one
        that was evaluated, so its figures are honest (see docs/benchmarks.md)."""
        from inference import Example, TrainConfig, train_intent_model

        pairs = training_snapshot()
        train, holdout = evaluation.split_examples(pairs)
        out_dir = Path(settings.MODEL_DIR) / f"intent-v{version.pk}"
        started = time.perf_counter()
        config = TrainConfig(mode=version.mode, **{**settings.NLU_TRAIN_OPTIONS, **train_options})
        path = train_intent_model(
            [Example(text=t, intent=i) for t, i in train], out_dir, config=config, progress=progress
        )
        metrics = read_metrics(path)
        metrics.update(
            train_examples=len(train),
            holdout_examples=len(holdout),
            train_seconds=round(time.perf_counter() - started, 2),
        )
        fields = {"data_hash": data_hash(pairs), "example_count": len(pairs), "metrics": metrics}
        return Trained(artifact_dir=path, holdout=holdout, fields=fields)

    def load(self, artifact_dir):
        from inference import Predictor

        return Predictor.load(artifact_dir)

    def evaluate(self, loaded, holdout) -> dict:
        return evaluation.evaluate_on(loaded, holdout)

    def holdout_of(self, report: dict) -> list:
        return [tuple(pair) for pair in report.get("holdout", [])]

    def regression_problems(self, report: dict, baseline: dict) -> list[str]:
        return evaluation.activation_problems(report, baseline)

    def summary(self, report: dict, loaded) -> dict:
        fields = {"model_id": loaded.model_id}
        if report:
            fields["metrics"] = {"holdout_accuracy": report["accuracy"], "holdout_macro_f1": report["macro_f1"]}
        return fields

    def enqueue(self, version_id: int) -> None:
        from chatbot.nlu.tasks import train_model_version

        train_model_version.delay(version_id)


intent_models = IntentModels()


def request_training(
    *, mode: str = "fast", user=None, activate_when_ready: bool = False, force_activation: bool = False
) -> ModelVersion:
    """A queued ModelVersion, or TrainingRefused while another one is queued,
    training or evaluating. Two requests at once: the unique `busy` row lets one in."""
    if mode not in ("fast", "full"):
        raise TrainingRefused(f"Unknown training mode {mode!r}; use fast or full.")
    return intent_models.request(
        mode=mode, user=user, activate_when_ready=activate_when_ready, force_activation=force_activation
    )


def start_training(*, mode: str = "fast", user=None, activate_when_ready: bool = False) -> ModelVersion:
    """request_training, then the run on the training queue once the row is committed."""
    if mode not in ("fast", "full"):
        raise TrainingRefused(f"Unknown training mode {mode!r}; use fast or full.")
    return intent_models.start(mode=mode, user=user, activate_when_ready=activate_when_ready)


def train_version(
    version_id: int, progress: Callable[[float, str], None] | None = None, **train_options
) -> ModelVersion:
    """Train the queued version on the training part of the data, evaluate it and
    the active version on the held-out part, and mark it ready or failed."""
    return intent_models.run(version_id, progress, **train_options)


def comparison_with_active(version: ModelVersion) -> tuple[ModelVersion | None, dict]:
    """The active version and its report on this version's held-out examples."""
    return intent_models.comparison_with_active(version)


def activate_model_version(version_id: int, user=None, *, force: bool = False) -> ModelVersion:
    """Make a ready version the one that answers; serving workers pick it up on
    their next message. Refused for a version that is not ready, whose artifact
    does not load, or that is worse than the active one (unless forced)."""
    return intent_models.activate(version_id, user, force=force)


def roll_back_to(version_id: int, user=None) -> ModelVersion:
    """Go back to a version that served before: no quality rules (it served), but
    its artifact must still load."""
    return intent_models.roll_back(version_id, user)


def active_version() -> ModelVersion | None:
    return intent_models.active()


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
