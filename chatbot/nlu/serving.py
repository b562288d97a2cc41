"""The intent model as a worker process holds it: loaded once, swapped when
the active version changes, never used half-loaded."""

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from django.conf import settings

from chatbot.modelops.lifecycle import check_pinned
from chatbot.nlu.models import ModelVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    predictor: object  # inference.Predictor
    artifact_dir: str = ""


class NoActiveModel(Exception):
    pass


_lock = threading.Lock()
_current: LoadedModel | None = None


def active_version_row() -> dict | None:
    return (
        ModelVersion.objects.filter(is_active=True, status=ModelVersion.Status.READY)
        .values("id", "artifact_dir", "artifact_sha256")
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
        check_pinned(row["artifact_dir"], row["artifact_sha256"])
        predictor = Predictor.load(
            row["artifact_dir"], device=settings.INFERENCE_DEVICE, threads=settings.INFERENCE_THREADS
        )
        _current = LoadedModel(version_id=row["id"], predictor=predictor, artifact_dir=row["artifact_dir"])
        return _current


def serving_predictor(version_id: int, artifact_dir: str):
    """The predictor this process answers with, when it is that version's (else None):
    other users of the same version, like explanations, need no second copy."""
    loaded = _current
    if loaded is not None and (loaded.version_id, loaded.artifact_dir) == (version_id, artifact_dir):
        return loaded.predictor
    return None


class MicroBatcher:
    """Runs the predictions that task threads ask for at the same moment as one
    forward pass.

    It never waits for a batch to fill: it takes whatever is queued when the
    model is free, so a lone message goes straight through, and messages that
    arrive during a forward pass share the next one. Requests are grouped by
    predictor, so a hot swap mid-queue answers each with the model it asked.
    """

    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, predictor, text: str) -> Future:
        future: Future = Future()
        self._queue.put((predictor, text, future))
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="intent-micro-batcher", daemon=True)
                    self._thread.start()
        return future

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            groups: dict[int, list] = {}
            for item in batch:
                groups.setdefault(id(item[0]), []).append(item)
            for items in groups.values():
                predictor = items[0][0]
                try:
                    results = predictor.predict([text for _, text, _ in items])
                except Exception as exc:  # each waiting task gets the error
                    for _, _, future in items:
                        future.set_exception(exc)
                    continue
                for (_, _, future), result in zip(items, results, strict=True):
                    future.set_result(result)


_batcher = MicroBatcher()


def predict(text: str, timeout: float = 30.0) -> tuple[object, int]:
    """(prediction, model version id) for one text, batched with concurrent calls."""
    model = current_model()
    return _batcher.submit(model.predictor, text).result(timeout=timeout), model.version_id


def warm_up() -> None:
    """Load the active model and run one prediction, so the first visitor does not wait for it."""
    try:
        predict("hello")
    except NoActiveModel:
        log.info("no active intent model yet; it will load with the first message after activation")
    except Exception:  # a broken artifact must not stop the worker; the task reports it per message
        log.exception("warming up the intent model failed")
