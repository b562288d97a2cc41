"""The knowledge index on a running Celery worker: built on the training queue,
answering visitors through the inference task, and swapped for a new version
without a restart."""

import time

import pytest

from chatbot.conversations.models import Message
from chatbot.knowledge import indexing, serving
from chatbot.knowledge.models import Article, KnowledgeIndexVersion
from tests.knowledge.conftest import QUESTIONS, TINY

QUESTION = "my lamp broke, is that covered?"


def wait_for(predicate, what: str, within: float = 120):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (value := predicate()) is not None:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"no {what} within {within} s")


def active_version(not_pk: int | None = None):
    version = KnowledgeIndexVersion.objects.filter(is_active=True).exclude(pk=not_pk).first()
    failed = KnowledgeIndexVersion.objects.filter(status="failed").first()
    assert failed is None, failed.error
    return version


def ask(visitor, say) -> Message:
    message = say(visitor, QUESTION)
    return wait_for(lambda: Message.objects.filter(reply_to_id=message.pk).first(), "bot reply")


@pytest.fixture
def help_center(transactional_db, settings, tmp_path, monkeypatch):
    settings.MODEL_DIR = tmp_path / "models"
    settings.KNOWLEDGE_AUTO_REBUILD = False
    questions = tmp_path / "questions.csv"
    questions.write_text(QUESTIONS)
    settings.KNOWLEDGE_QUESTIONS = questions
    monkeypatch.setattr(indexing, "MIN_LABELLED_QUESTIONS", 4)
    monkeypatch.setattr(serving, "_current", None)
    for a in TINY:
        Article.objects.create(slug=a.id, title=a.title, body=a.body, url=a.url)


def test_a_new_index_is_swapped_in_under_a_running_worker(help_center, celery_worker, visitor, say):
    first = indexing.knowledge_indexes.start(activate_when_ready=True)
    first = wait_for(lambda: active_version(), "first index")
    reply = ask(visitor, say)
    assert (reply.answer_source, reply.knowledge_index_id) == ("article", first.pk)
    assert reply.citation["title"] == "Warranty"

    warranty = Article.objects.get(slug="warranty")
    warranty.title = "Warranty and repairs"
    warranty.save()
    indexing.knowledge_indexes.start(activate_when_ready=True, force_activation=True)
    second = wait_for(lambda: active_version(not_pk=first.pk), "second index")

    reply = ask(visitor, say)  # the same worker, no restart
    assert (reply.answer_source, reply.knowledge_index_id) == ("article", second.pk)
    assert reply.citation["title"] == "Warranty and repairs"
