"""Articles to suggest to an agent for what a visitor wrote: the index's best
articles, no threshold (the agent judges), each with the passage that matched."""

from __future__ import annotations

SNIPPET_CHARS = 200


def suggest_articles(index, text: str, k: int = 3) -> list[dict]:
    """The k best articles for `text` (inference.knowledge.KnowledgeIndex), best first."""
    if not text.strip():
        return []
    suggestions = []
    for hit in index.search(text, k=k):
        passage = index.passages[hit.passage]
        snippet = passage.text if len(passage.text) <= SNIPPET_CHARS else passage.text[: SNIPPET_CHARS - 1] + "…"
        suggestions.append(
            {
                "article_id": hit.article_id,
                "title": hit.title,
                "url": hit.url,
                "heading": passage.heading,
                "snippet": snippet,
                "score": round(hit.fused, 4),
            }
        )
    return suggestions
