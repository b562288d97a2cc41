"""The intent model as a worker process holds it: loaded once, swapped when
the active version changes, never used half-loaded."""

import logging
import threading
from dataclasses import dataclass

from django.conf import settings

from chatbot.nlu.models import ModelVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    predictor: object  # inference.Predictor


class NoActiveModel(Exception):
    pass


_lock = threading.Lock()
_current: LoadedModel | None = None


def active_version_row() -> dict | None:
    return (
        ModelVersion.objects.filter(is_active=True, status=ModelVersion.Status.READY)
        .values("id", "artifact_dir")
        .first()
    )


def current_model() -> LoadedModel:
    """The active model, loading a new one first when the active version changed.

    One cheap query per call decides; the swap is a single reference assignment
    after the new predictor has fully loaded, so a concurrent predict sees the
    old model or the new one, never a partial one.
    """
    global _current
    row = active_version_row()
    if row is None:
        raise NoActiveModel("No intent model is active: train one and activate it.")
    loaded = _current
    if loaded is not None and loaded.version_id == row["id"]:
        return loaded
    with _lock:
        loaded = _current
        if loaded is not None and loaded.version_id == row["id"]:
            return loaded
        from inference import Predictor

        log.info("loading intent model v%s from %s", row["id"], row["artifact_dir"])
        predictor = Predictor.load(
            row["artifact_dir"], device=settings.INFERENCE_DEVICE, threads=settings.INFERENCE_THREADS
        )
        _current = LoadedModel(version_id=row["id"], predictor=predictor)
        return _current
