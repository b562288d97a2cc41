"""Knowledge-base answers: help-center articles split into passages, a hybrid
BM25 + dense index, extracted and cited answers, and a score to abstain on.
Plain Python (no Django); the product's app is chatbot.knowledge."""

from .answer import answer_from_passages, extract_answer
from .artifact import verify
from .config import IndexConfig, KnowledgeConfig
from .evaluation import ask_all, calibrate, choose_threshold, format_report, report, split_questions
from .explain import explain_answer
from .index import Answer, Hit, KnowledgeIndex
from .passages import Article, Passage, split_article, split_sentences
from .sources import (
    KnowledgeDataError,
    Question,
    html_to_markdown,
    load_articles,
    load_questions,
    sanitize_html,
)
from .suggest import suggest_articles

__all__ = [
    "Answer",
    "Article",
    "Hit",
    "IndexConfig",
    "KnowledgeConfig",
    "KnowledgeDataError",
    "KnowledgeIndex",
    "Passage",
    "Question",
    "answer_from_passages",
    "ask_all",
    "calibrate",
    "choose_threshold",
    "explain_answer",
    "extract_answer",
    "format_report",
    "html_to_markdown",
    "load_articles",
    "load_questions",
    "report",
    "sanitize_html",
    "split_article",
    "split_questions",
    "split_sentences",
    "suggest_articles",
    "verify",
]
