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


# --- For agents: the index version that answered, asked again (explanations, suggestions) ----

_other_lock = threading.Lock()
_others: dict[int, object] = {}  # version id -> KnowledgeIndex, the last few versions explained
KEEP_OTHER_VERSIONS = 2


def index_of_version(version_id: int):
    """The loaded index of one version: the one in service when it is that version, else
    loaded (checksums verified) and kept for the next explanation. Raises
    KnowledgeIndexVersion.DoesNotExist or the artifact's error."""
    loaded = _current
    if loaded is not None and loaded.version_id == version_id:
        return loaded.index
    with _other_lock:
        if version_id not in _others:
            from chatbot.knowledge.indexing import knowledge_indexes

            version = KnowledgeIndexVersion.objects.get(pk=version_id)
            _others[version_id] = knowledge_indexes.load(version.artifact_dir)
            for old in list(_others)[:-KEEP_OTHER_VERSIONS]:
                _others.pop(old, None)
        return _others[version_id]


def explain(version_id: int, question: str) -> dict:
    """Why index version `version_id` answered `question` as it did (inference.knowledge.explain_answer)."""
    from inference.knowledge import explain_answer

    return explain_answer(index_of_version(version_id), question)


def suggest(text: str, k: int = 3) -> tuple[int, list[dict]] | None:
    """(active index version, the k best articles for `text`) for the agents' dashboard;
    None without an active index."""
    from inference.knowledge import suggest_articles

    loaded = current_index()
    if loaded is None:
        return None
    return loaded.version_id, suggest_articles(loaded.index, text, k=k)
