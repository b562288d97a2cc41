"""The answer shown to a customer: the passage's one to three most relevant
sentences, taken verbatim (nothing is generated)."""

from __future__ import annotations

from collections.abc import Callable

from .passages import split_sentences
from .text import terms


def extract_answer(
    passage: str, question_terms: list[str], idf: Callable[[str], float], max_sentences: int = 3, max_words: int = 70
) -> str:
    """The sentence sharing the most (idf-weighted) question words, then the
    sentences after it while they share a word too or the answer is still under 25
    words, within max_sentences and max_words; when no sentence shares a word
    (a paraphrase the dense vectors matched), the passage's opening sentences."""
    sentences = split_sentences(passage)
    if not sentences:
        return passage
    wanted = set(question_terms)
    scores = [sum(idf(t) for t in set(terms(s)) & wanted) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
    if scores[best] <= 0:
        best = 0
    chosen = [sentences[best]]
    words = len(sentences[best].split())
    for i in range(best + 1, min(best + max_sentences, len(sentences))):
        s, n = sentences[i], len(sentences[i].split())
        if words + n > max_words or (scores[i] <= 0 and words >= 25):
            break
        chosen.append(s)
        words += n
    return " ".join(chosen)
