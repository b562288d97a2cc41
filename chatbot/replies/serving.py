"""Reply models as a worker process holds them: one loaded suggester per kind,
swapped when the active version of that kind changes, never used half-loaded."""

import logging
import threading
from dataclasses import dataclass

from django.conf import settings

from chatbot.modelops.lifecycle import check_pinned
from chatbot.replies.models import ReplyModelVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedSuggester:
    version_id: int
    suggester: object  # inference.replies.ReplySuggester | RetrievalSuggester


_lock = threading.Lock()
_loaded: dict[str, LoadedSuggester] = {}


def active_versions() -> list[ReplyModelVersion]:
    return list(ReplyModelVersion.objects.filter(is_active=True, status=ReplyModelVersion.Status.READY))


def chosen_versions(source: str | None = None) -> list[ReplyModelVersion]:
    """The active versions that suggest under REPLY_SUGGESTIONS_SOURCE."""
    source = source or settings.REPLY_SUGGESTIONS_SOURCE
    active = {v.kind: v for v in active_versions()}
    if source == "both":
        return [active[k] for k in ReplyModelVersion.Kind.values if k in active]
    if source in active:
        return [active[source]]
    if source != "best" or not active:
        return []
    # The better held-out BLEU; a version without one (too little data) ranks last,
    # and between equals seq2seq, the model this feature is for.
    return [max(active.values(), key=lambda v: (v.metrics.get("bleu", -1.0), v.kind == "seq2seq"))]


def suggester_for(version: ReplyModelVersion) -> object:
    """The loaded suggester of ``version``, loading it (once per process) if it is new.
    Raises whatever loading raises: a damaged artifact must not serve."""
    loaded = _loaded.get(version.kind)
    if loaded is not None and loaded.version_id == version.pk:
        return loaded.suggester
    with _lock:
        loaded = _loaded.get(version.kind)
        if loaded is not None and loaded.version_id == version.pk:
            return loaded.suggester
        from inference.replies import load_suggester

        log.info("loading reply model %s from %s", version, version.artifact_dir)
        check_pinned(version.artifact_dir, version.artifact_sha256)
        suggester = load_suggester(
            version.artifact_dir, device=settings.INFERENCE_DEVICE, threads=settings.INFERENCE_THREADS
        )
        _loaded[version.kind] = LoadedSuggester(version_id=version.pk, suggester=suggester)
        return suggester


def forget() -> None:
    """Drop every loaded suggester (tests, or to free memory)."""
    with _lock:
        _loaded.clear()
