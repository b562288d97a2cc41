"""The answer shown to a customer: the passage's one to three most relevant
sentences, taken verbatim (nothing is generated)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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


def answer_from_passages(
    question: str, passages: Sequence[tuple[str, str]], max_sentences: int = 3, max_words: int = 70
) -> tuple[int, str]:
    """For an intent linked to a few articles: (row, answer) where row is the passage,
    of (search text, text) pairs, sharing the most question words weighted by their
    inverse document frequency among these passages (the first on a tie or when none
    shares a word), and answer its most relevant sentences (extract_answer)."""
    if not passages:
        raise ValueError("no passages to answer from")
    documents = [set(terms(search_text)) for search_text, _ in passages]
    n = len(documents)

    def idf(term: str) -> float:
        df = sum(term in words for words in documents)
        return math.log1p((n - df + 0.5) / (df + 0.5)) if df else 0.0

    wanted = set(terms(question))
    scores = [sum(idf(t) for t in words & wanted) for words in documents]
    row = max(range(n), key=lambda i: (scores[i], -i))
    return row, extract_answer(passages[row][1], list(wanted), idf, max_sentences, max_words)
