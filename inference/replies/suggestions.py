"""The suggestion a model returns, and the dedup rule shared by every suggester."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Suggestion:
    text: str
    # seq2seq: length-normalised log-probability (<= 0); retrieval: cosine similarity.
    # Comparable within one call, not across model kinds.
    score: float


def normalise(text: str) -> str:
    """Case-, punctuation- and spacing-insensitive key: "Sure!" and "sure." are one reply."""
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.casefold())
    return " ".join(kept.split())


def dedupe(candidates: Iterable[Suggestion], n: int) -> list[Suggestion]:
    """First ``n`` distinct non-empty suggestions, in the order given (best first)."""
    seen: set[str] = set()
    kept: list[Suggestion] = []
    for candidate in candidates:
        key = normalise(candidate.text)
        if not key or key in seen:
            continue
        seen.add(key)
        kept.append(candidate)
        if len(kept) == n:
            break
    return kept
