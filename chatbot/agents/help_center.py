"""The help center beside the agent's reply box (issue 16): articles suggested for
the visitor's latest message, from the active knowledge index on the inference
queue and pushed when found (the page never waits for them), and a search over
the published articles in the database."""

import logging

from django.db import connection
from django.db.models import Prefetch

from chatbot import realtime
from chatbot.conversations.models import Message
from chatbot.knowledge.models import Article, Passage

log = logging.getLogger(__name__)

SUGGESTIONS = 3
SEARCH_LIMIT = 8
MAX_QUERY_CHARS = 200
SNIPPET_CHARS = 200


class SearchRefused(Exception):
    pass


# --- Suggestions for the visitor's latest message (a task on the inference queue) -----------


def latest_visitor_message_id(conversation_id) -> int | None:
    return (
        Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.VISITOR)
        .order_by("-seq")
        .values_list("pk", flat=True)
        .first()
    )


def suggest_articles(message_id: int) -> list[dict]:
    """The active index's best articles for a visitor message, pushed to the agents who
    opened its conversation; nothing without an active index or when it fails (the
    dashboard works without suggestions)."""
    from chatbot.knowledge import serving

    message = Message.objects.filter(pk=message_id, sender=Message.Sender.VISITOR).first()
    if message is None:
        return []
    try:
        found = serving.suggest(message.text, k=SUGGESTIONS)
    except Exception:  # a damaged index: no suggestions, the log says why
        log.exception("no article suggestions for message %s", message_id)
        return []
    if found is None:
        return []
    version_id, articles = found
    realtime.push(
        realtime.AGENTS_GROUP,
        {
            "type": "article.suggestions",
            "conversation_id": str(message.conversation_id),
            "message_id": message.pk,
            "index_version": version_id,
            "articles": articles,
        },
    )
    return articles


# --- Search (in the web process: the database, no model) ------------------------------------


def search_articles(query: object) -> list[dict]:
    """Published articles matching `query`, best first: PostgreSQL full-text search
    (title before keywords before body), a plain icontains elsewhere."""
    if not isinstance(query, str) or not query.strip():
        raise SearchRefused("Type a few words to search the help center.")
    query = query.strip()[:MAX_QUERY_CHARS]
    articles = Article.objects.filter(published=True)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        document = (
            SearchVector("title", weight="A") + SearchVector("keywords", weight="B") + SearchVector("body", weight="C")
        )
        wanted = SearchQuery(query, search_type="websearch")
        articles = (
            articles.annotate(document=document, rank=SearchRank(document, wanted))
            .filter(document=wanted)
            .order_by("-rank", "title")
        )
    else:
        from django.db.models import Q

        articles = articles.filter(
            Q(title__icontains=query) | Q(keywords__icontains=query) | Q(body__icontains=query)
        ).order_by("title")
    first_passage = Prefetch("passages", queryset=Passage.objects.order_by("position"), to_attr="ordered_passages")
    return [_found(article) for article in articles.prefetch_related(first_passage)[:SEARCH_LIMIT]]


def _found(article: Article) -> dict:
    text = article.ordered_passages[0].text if article.ordered_passages else ""
    snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
    return {"article_id": article.slug, "title": article.title, "url": article.url, "snippet": snippet}
