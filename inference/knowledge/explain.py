"""Why the knowledge base answered (or declined) a question: the passages it
weighed with their BM25, dense and fused scores, the abstention score against
the index's threshold, and the sentences it chose. Plain data for the product's
"Why?" view; computed again from the same index version, so it matches what the
visitor was told."""

from __future__ import annotations

import math

from .passages import split_sentences

SNIPPET_CHARS = 400


def explain_answer(index, question: str, k: int = 5) -> dict:
    """A JSON-able explanation of `index.answer(question)` (inference.knowledge.KnowledgeIndex)."""
    config = index.config
    answer = index.answer(question, k=k)
    hits = answer.hits
    passages = []
    for rank, hit in enumerate(hits, start=1):
        passage = index.passages[hit.passage]
        passages.append(
            {
                "rank": rank,
                "article_id": hit.article_id,
                "title": hit.title,
                "url": hit.url,
                "heading": passage.heading,
                "text": passage.text[:SNIPPET_CHARS] + ("…" if len(passage.text) > SNIPPET_CHARS else ""),
                "bm25": round(hit.bm25, 4),
                "dense": round(hit.dense, 4),
                "fused": round(hit.fused, 4),
                "chosen": answer.answered and rank == 1,
            }
        )
    return {
        "question": question,
        "index_id": getattr(index, "index_id", ""),
        "answered": answer.answered,
        "score": round(answer.score, 4) if math.isfinite(answer.score) else None,
        "threshold": round(answer.threshold, 4),
        "threshold_rule": config.threshold_rule,
        # How the abstention score is made: a logistic regression (fitted on validation
        # questions) over these features of the best article, sigmoid(bias + sum(w * x)).
        "score_rule": {
            "bias": round(config.abstain_bias, 4),
            "terms": [
                {"feature": name, "weight": round(weight, 4), "value": round(answer.features.get(name, 0.0), 4)}
                for name, weight in zip(config.abstain_features, config.abstain_weights, strict=True)
            ],
        },
        "fusion": config.fusion,
        "passages": passages,
        "chosen": {
            "article_id": answer.article_id,
            "title": answer.title,
            "url": answer.url,
            "heading": answer.heading,
            "text": answer.text,
            "sentences": split_sentences(answer.text) if answer.text else [],
        }
        if answer.answered
        else None,
    }
