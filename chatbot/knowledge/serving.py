"""The knowledge index as a worker process holds it: loaded once, swapped when the
active version changes (like chatbot.nlu.serving), never used half-loaded."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from chatbot.knowledge.models import KnowledgeIndexVersion
from chatbot.modelops.lifecycle import check_pinned

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedIndex:
    version_id: int
    index: object  # inference.knowledge.KnowledgeIndex


@dataclass(frozen=True)
class KnowledgeAnswer:
    """What the bot needs from one question asked of the index (plain data)."""

    answered: bool
    score: float
    threshold: float
    text: str
    article_id: str
    title: str
    url: str
    index_version_id: int
    considered: list[dict]  # the articles considered, best first (for review)

    @property
    def citation(self) -> dict:
        return {"article_id": self.article_id, "title": self.title, "url": self.url}


_lock = threading.Lock()
_current: LoadedIndex | None = None


def current_index() -> LoadedIndex | None:
    """The active index (None when there is none), loading the new one first when the
    active version changed: the swap is one reference assignment after a full load."""
    global _current
    row = (
        KnowledgeIndexVersion.objects.filter(is_active=True, status=KnowledgeIndexVersion.Status.READY)
        .values("id", "artifact_dir", "artifact_sha256")
        .first()
    )
    if row is None:
        return None
    loaded = _current
    if loaded is not None and loaded.version_id == row["id"]:
        return loaded
    with _lock:
        loaded = _current
        if loaded is not None and loaded.version_id == row["id"]:
            return loaded
        from chatbot.knowledge.indexing import knowledge_indexes

        log.info("loading knowledge index v%s from %s", row["id"], row["artifact_dir"])
        check_pinned(row["artifact_dir"], row["artifact_sha256"])
        _current = LoadedIndex(version_id=row["id"], index=knowledge_indexes.load(row["artifact_dir"]))
        return _current


def ask(question: str) -> KnowledgeAnswer | None:
    """The active index's answer to a visitor's question; None without an active
    index or when it cannot be loaded (the bot then falls back as before)."""
    try:
        loaded = current_index()
    except Exception:  # a damaged artifact must not stop the chat; the bot falls back
        log.exception("the active knowledge index could not be loaded")
        return None
    if loaded is None:
        return None
    try:
        answer = loaded.index.answer(question)
    except Exception:  # the visitor still gets the fallback; the log says why
        log.exception("the knowledge index v%s failed to answer", loaded.version_id)
        return None
    considered = [
        {"article_id": h.article_id, "title": h.title, "url": h.url, "score": round(h.fused, 4)} for h in answer.hits
    ]
    return KnowledgeAnswer(
        answered=answer.answered,
        score=float(answer.score),
        threshold=float(answer.threshold),
        text=answer.text,
        article_id=answer.article_id,
        title=answer.title,
        url=answer.url,
        index_version_id=loaded.version_id,
        considered=considered,
    )


def warm_up() -> None:
    try:
        ask("hello")
    except Exception:
        log.exception("warming up the knowledge index failed")
