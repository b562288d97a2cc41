"""Training data in, model versions out: import, train, activate."""

import csv
import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatbot.nlu.models import Intent, ModelVersion, Response, TrainingExample

log = logging.getLogger(__name__)

DEMO_INTENTS = Path(__file__).resolve().parent / "demo" / "store_intents.yml"


class ImportError_(ValueError):
    """A file that cannot be imported; nothing was written."""


class TrainingRefused(Exception):
    pass


class ActivationRefused(Exception):
    pass


@dataclass
class ImportReport:
    added: int = 0
    skipped: int = 0
    intents_created: int = 0
    rejected: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.added} added, {self.skipped} skipped as duplicate, "
            f"{len(self.rejected)} rejected, {self.intents_created} new intents"
        )


def _slug_ok(name: str) -> bool:
    return bool(name) and len(name) <= 100 and all(c.isalnum() or c in "_-" for c in name)


def _add_example(report: ImportReport, intent: Intent, text: str, source: str) -> None:
    text = text.strip()
    if TrainingExample.objects.filter(text=text).exists():
        report.skipped += 1
        return
    TrainingExample.objects.create(intent=intent, text=text, source=source)
    report.added += 1


def _intent(report: ImportReport, name: str, **defaults) -> Intent:
    intent, created = Intent.objects.get_or_create(name=name, defaults=defaults)
    report.intents_created += created
    return intent


@transaction.atomic
def import_intents_yaml(path: Path, source: str = TrainingExample.Source.IMPORT) -> ImportReport:
    """Intents with examples and responses from the demo YAML schema."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ImportError_(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("intents"), list):
        raise ImportError_(f"{path}: expected a mapping with a list under 'intents'.")
    report = ImportReport()
    for number, item in enumerate(data["intents"], 1):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not _slug_ok(name):
            raise ImportError_(f"{path}: intent #{number} has no valid name (letters, digits, _ or -).")
        intent = _intent(
            report, name, description=str(item.get("description", ""))[:300], handoff=bool(item.get("handoff"))
        )
        for text in item.get("examples") or []:
            if not isinstance(text, str) or not text.strip():
                raise ImportError_(f"{path}: intent {name!r} has an empty or non-text example.")
            _add_example(report, intent, text, source)
        if not intent.responses.exists():
            for position, response in enumerate(item.get("responses") or []):
                if not isinstance(response, dict) or not isinstance(response.get("text"), str):
                    raise ImportError_(f"{path}: intent {name!r} response #{position + 1} has no text.")
                quick = response.get("quick_replies") or []
                if not isinstance(quick, list) or not all(isinstance(q, str) for q in quick):
                    raise ImportError_(f"{path}: intent {name!r} quick_replies must be a list of texts.")
                Response.objects.create(intent=intent, text=response["text"], quick_replies=quick, position=position)
    return report


@transaction.atomic
def import_examples_csv(content: bytes, source: str = TrainingExample.Source.IMPORT) -> ImportReport:
    """`text,intent` rows; a row with a bad value is rejected with its line, the rest imported.
    A file that is not CSV of that shape changes nothing."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportError_(f"The file is not UTF-8 text ({exc}).") from exc
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"text", "intent"} <= set(reader.fieldnames):
        raise ImportError_("The first line must be the header text,intent.")
    report = ImportReport()
    for row in reader:
        line = reader.line_num
        sample, name = (row.get("text") or "").strip(), (row.get("intent") or "").strip()
        if not sample:
            report.rejected.append(f"line {line}: empty text")
        elif not _slug_ok(name):
            report.rejected.append(f"line {line}: intent {name!r} is not a valid name")
        else:
            _add_example(report, _intent(report, name), sample, source)
    return report


# --- Model versions ---------------------------------------------------------


def training_snapshot() -> list[tuple[str, str]]:
    """(text, intent) of every training example, in a stable order."""
    return list(TrainingExample.objects.order_by("id").values_list("text", "intent__name"))


def data_hash(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for text, intent in sorted(pairs):
        digest.update(f"{intent}\t{text}\n".encode())
    return digest.hexdigest()


def request_training(*, mode: str = "fast", user=None) -> ModelVersion:
    """A queued ModelVersion, or TrainingRefused while another one is queued or training."""
    with transaction.atomic():
        # Locking the open rows serialises two requests arriving at once.
        busy = ModelVersion.objects.select_for_update().filter(
            status__in=[ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING, ModelVersion.Status.EVALUATING]
        )
        if busy.exists():
            raise TrainingRefused(f"Model {busy.first()} is still being trained; wait for it to finish.")
        return ModelVersion.objects.create(mode=mode, created_by=user)


def _set_progress(version_id: int, fraction: float, stage: str) -> None:
    ModelVersion.objects.filter(pk=version_id).update(
        progress=round(max(0.0, min(fraction, 1.0)), 4), stage=stage[:200]
    )


def train_version(
    version_id: int, progress: Callable[[float, str], None] | None = None, **train_options
) -> ModelVersion:
    """Train the queued version on the current training data and mark it ready or failed."""
    from inference import Example, TrainConfig, train_intent_model

    claimed = ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.QUEUED).update(
        status=ModelVersion.Status.TRAINING, started_at=timezone.now(), progress=0.0
    )
    version = ModelVersion.objects.get(pk=version_id)
    if not claimed:
        return version  # already run (a redelivered task) or cancelled
    pairs = training_snapshot()
    out_dir = Path(settings.MODEL_DIR) / f"intent-v{version_id}"

    def report(fraction: float, stage: str) -> None:
        _set_progress(version_id, fraction, stage)
        if progress is not None:
            progress(fraction, stage)

    try:
        examples = [Example(text=text, intent=intent) for text, intent in pairs]
        config = TrainConfig(mode=version.mode, **train_options)
        path = train_intent_model(examples, out_dir, config=config, progress=report)
        from inference import Predictor

        predictor = Predictor.load(path)
        metrics = _read_metrics(path)
    except Exception as exc:
        log.exception("training of model v%s failed", version_id)
        ModelVersion.objects.filter(pk=version_id).update(
            status=ModelVersion.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000], finished_at=timezone.now()
        )
        return ModelVersion.objects.get(pk=version_id)
    ModelVersion.objects.filter(pk=version_id).update(
        status=ModelVersion.Status.READY,
        progress=1.0,
        stage="ready",
        artifact_dir=str(path),
        model_id=predictor.model_id,
        data_hash=data_hash(pairs),
        example_count=len(pairs),
        metrics=metrics,
        finished_at=timezone.now(),
    )
    return ModelVersion.objects.get(pk=version_id)


def _read_metrics(path: Path) -> dict:
    import json

    metrics_file = Path(path) / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.exists() else {}


def activate_model_version(version_id: int, user=None) -> ModelVersion:
    """Make a ready version the one that answers; the previous one stays ready for rollback."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version_id)
        if version.status != ModelVersion.Status.READY:
            raise ActivationRefused(f"{version} is not ready and cannot be activated.")
        from inference import ArtifactError, Predictor

        try:
            Predictor.load(version.artifact_dir)
        except ArtifactError as exc:
            raise ActivationRefused(f"{version}'s artifact is damaged: {exc}") from exc
        ModelVersion.objects.filter(is_active=True).exclude(pk=version_id).update(is_active=False)
        ModelVersion.objects.filter(pk=version_id).update(
            is_active=True, activated_at=timezone.now(), activated_by=user
        )
    return ModelVersion.objects.get(pk=version_id)


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()
