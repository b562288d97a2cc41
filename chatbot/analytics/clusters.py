"""Top unanswered questions: fallback and low-confidence visitor messages grouped
by meaning, the to-do list for the next training round or help article.

Texts are embedded with the product's base sentence encoder (inference's
SentenceEncoder, the model the intent classifier is built on) and grouped by
scikit-learn's agglomerative clustering on cosine distance, so a group is as wide
as ANALYTICS_CLUSTER_DISTANCE allows and the number of groups follows the data.
"""

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count
from django.urls import reverse

from chatbot.analytics.models import UnansweredMessage
from chatbot.analytics.reports import Period

MAX_TEXTS = 1000  # the most frequent distinct texts of the range are grouped
LINK_IDS = 100  # feedback ids in one review-inbox link
CACHE_SIZE = 50_000


@dataclass
class Group:
    label: str  # the group's most frequent text
    count: int
    examples: list[str]
    feedback_ids: list[int]

    @property
    def review_url(self) -> str:
        ids = ",".join(str(i) for i in self.feedback_ids[:LINK_IDS])
        return f"{reverse('admin:nlu_feedback_changelist')}?status=all&id__in={ids}"


@functools.lru_cache(maxsize=1)
def encoder():
    from inference import SentenceEncoder

    return SentenceEncoder(device=settings.INFERENCE_DEVICE)


class _EmbeddingCache:
    """Embeddings of texts already seen by this process (a text's vector never changes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in texts if t not in self._vectors]
        if missing:
            vectors = encoder().encode(missing)  # (len(missing), hidden), unit length
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    self._vectors[text] = vector
                while len(self._vectors) > CACHE_SIZE:
                    self._vectors.popitem(last=False)
        with self._lock:
            return np.stack([self._vectors[t] for t in texts])


embeddings = _EmbeddingCache()


def unanswered_texts(period: Period) -> list[tuple[str, int, list[int]]]:
    """(text, times, feedback ids) of the range's fallback and low-confidence messages, most frequent first."""
    start, end = period.bounds()
    rows = UnansweredMessage.objects.filter(created_at__gte=start, created_at__lt=end)
    top = list(rows.values("text").annotate(n=Count("*")).order_by("-n", "text")[:MAX_TEXTS])
    ids: dict[str, list[int]] = {r["text"]: [] for r in top}
    for feedback_id, text in rows.filter(text__in=list(ids)).values_list("feedback_id", "text")[: LINK_IDS * MAX_TEXTS]:
        if len(ids[text]) < LINK_IDS:
            ids[text].append(feedback_id)
    return [(r["text"], r["n"], ids[r["text"]]) for r in top]


def group(texts: list[tuple[str, int, list[int]]], distance: float | None = None) -> list[Group]:
    """Group texts by meaning; biggest group first."""
    from sklearn.cluster import AgglomerativeClustering

    if not texts:
        return []
    if len(texts) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        vectors = embeddings.embed([t for t, _, _ in texts])
        labels = AgglomerativeClustering(
            n_clusters=None,
            distance_threshold=distance or settings.ANALYTICS_CLUSTER_DISTANCE,
            metric="cosine",
            linkage="average",
        ).fit_predict(vectors)
    members: dict[int, list] = {}
    for label, item in zip(labels, texts, strict=True):
        members.setdefault(int(label), []).append(item)
    groups = []
    for items in members.values():
        items.sort(key=lambda item: -item[1])
        groups.append(
            Group(
                label=items[0][0],
                count=sum(n for _, n, _ in items),
                examples=[t for t, _, _ in items[:5]],
                feedback_ids=[i for _, _, ids in items for i in ids],
            )
        )
    return sorted(groups, key=lambda g: (-g.count, g.label))


def top_unanswered(period: Period, limit: int = 20) -> list[Group]:
    return group(unanswered_texts(period))[:limit]
