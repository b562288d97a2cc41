"""The knowledge index as a model kind: built from the published articles, its
threshold chosen on labelled questions, evaluated, activated past the guard, rolled
back, hot-swapped in the worker; rebuilt (debounced) when articles change."""

from pathlib import Path

import pytest

from chatbot.knowledge import indexing, serving
from chatbot.knowledge.models import Article, KnowledgeIndexVersion
from chatbot.modelops.lifecycle import ActivationRefused
from tests.knowledge.conftest import LEARNING_PAIRS, QUESTIONS, TINY


@pytest.fixture
def help_center(db, settings, tmp_path, monkeypatch):
    settings.MODEL_DIR = tmp_path / "models"
    settings.KNOWLEDGE_AUTO_REBUILD = False
    questions = tmp_path / "questions.csv"
    questions.write_text(QUESTIONS)
    settings.KNOWLEDGE_QUESTIONS = questions
    monkeypatch.setattr(indexing, "MIN_LABELLED_QUESTIONS", 4)
    monkeypatch.setattr(serving, "_current", None)
    for a in TINY:
        Article.objects.create(slug=a.id, title=a.title, body=a.body, url=a.url)
    return Article.objects.all()


def build(force: bool = False, **options) -> KnowledgeIndexVersion:
    version = indexing.knowledge_indexes.request(activate_when_ready=True, force_activation=force)
    return indexing.knowledge_indexes.run(version.pk, min_words=5, max_words=60, **options)


def test_a_build_indexes_the_published_articles_and_serves_them(help_center):
    Article.objects.filter(slug="warranty").update(published=False)
    version = build()
    assert version.status == "ready" and version.is_active, version.error
    assert version.article_count == 3 and version.passage_count >= 3 and len(version.index_id) == 12
    # The threshold was chosen on the validation half; the other half was held out and scored.
    assert "validation questions" in version.metrics["threshold_rule"]
    assert version.report["questions"] == len(version.report["holdout"]) > 0
    assert "holdout_hit@1" in version.metrics
    answer = serving.ask("how long does express delivery take")
    assert answer is not None and answer.index_version_id == version.pk
    assert answer.answered and answer.article_id == "shipping" and answer.url == "https://shop.example/help/shipping"
    assert "warranty" not in {c["article_id"] for c in answer.considered}  # unpublished: not indexed


def test_the_default_threshold_is_used_when_too_few_questions_fit(help_center, settings, monkeypatch):
    monkeypatch.setattr(indexing, "MIN_LABELLED_QUESTIONS", 1000)
    settings.KNOWLEDGE_DEFAULT_THRESHOLD = 0.123
    version = build()
    assert version.metrics["threshold"] == 0.123 and "KNOWLEDGE_DEFAULT_THRESHOLD" in version.metrics["threshold_rule"]
    assert version.report == {}


def test_no_published_articles_fails_the_build_with_a_reason(help_center):
    Article.objects.update(published=False)
    version = build()
    assert version.status == "failed" and "No published articles" in version.error
    assert serving.ask("anything") is None


def test_activating_another_index_swaps_it_in_the_worker_and_rollback_returns(help_center):
    first = build()
    loaded = serving.current_index()
    assert loaded.version_id == first.pk and serving.current_index() is loaded  # no reload while unchanged
    article = Article.objects.get(slug="shipping")
    article.title = "Delivery and courier options"
    article.save()
    second = build(force=True)  # (seven held-out questions: the guard is tested below)
    assert second.is_active and second.articles_sha256 != first.articles_sha256
    answer = serving.ask("how long does express delivery take")
    assert answer.index_version_id == second.pk and answer.title == "Delivery and courier options"
    assert serving.current_index().index.encoder is loaded.index.encoder  # the swap loads no second encoder

    indexing.knowledge_indexes.roll_back(first.pk)
    answer = serving.ask("how long does express delivery take")
    assert answer.index_version_id == first.pk and answer.title == "Delivery times and costs"
    actions = list(indexing.knowledge_indexes.transitions(first.pk).values_list("action", flat=True))
    assert actions[-1] == "rolled back"


def test_the_guard_refuses_an_index_that_answers_worse(help_center):
    first = build()
    # An edit loses the shipping article's content (same id): its questions go wrong.
    Article.objects.filter(slug="shipping").update(title="About us", body="Our workshop opened in 1990 in Leeds.")
    version = indexing.knowledge_indexes.request()
    worse = indexing.knowledge_indexes.run(version.pk, min_words=5, max_words=60)
    assert worse.status == "ready" and not worse.is_active
    with pytest.raises(ActivationRefused, match="hit@1 fell"):
        indexing.knowledge_indexes.activate(worse.pk)
    assert KnowledgeIndexVersion.objects.get(is_active=True).pk == first.pk
    indexing.knowledge_indexes.activate(worse.pk, force=True)
    assert KnowledgeIndexVersion.objects.get(is_active=True).pk == worse.pk


def test_a_damaged_index_is_not_served_and_the_bot_goes_on(help_center):
    version = build()
    (indexing.Path(version.artifact_dir) / "articles.json").write_text("[]")
    assert serving.ask("how long is delivery") is None
    with pytest.raises(ActivationRefused, match="damaged"):
        indexing.knowledge_indexes.activate(version.pk)


def test_article_changes_schedule_one_debounced_rebuild(db, settings, monkeypatch, django_capture_on_commit_callbacks):
    from chatbot.knowledge import tasks

    settings.KNOWLEDGE_AUTO_REBUILD = True
    settings.KNOWLEDGE_REBUILD_DELAY_S = 30
    scheduled = []
    monkeypatch.setattr(tasks.rebuild_index_if_changed, "apply_async", lambda **kw: scheduled.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        for a in TINY:
            Article.objects.create(slug=a.id, title=a.title, body=a.body, url=a.url)
        Article.objects.get(slug="password").delete()
    assert scheduled == [{"countdown": 30}]

    started = []
    monkeypatch.setattr(indexing, "start_build", lambda **kw: started.append(kw))
    indexing.rebuild_if_changed()
    assert started == [{"activate_when_ready": True}]
    # Once it ran, the next change schedules again.
    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.filter(slug="returns").first().save()
    assert len(scheduled) == 2


def test_an_unchanged_help_center_is_not_rebuilt(help_center, monkeypatch):
    build()
    started = []
    monkeypatch.setattr(indexing, "start_build", lambda **kw: started.append(kw))
    indexing.rebuild_if_changed()
    assert started == []
    Article.objects.filter(slug="returns").update(body="Returns are free within 60 days of delivery.")
    indexing.rebuild_if_changed()
    assert started == [{"activate_when_ready": True}]


def test_admin_builds_a_new_index_without_selecting_a_version(client, admin, help_center, monkeypatch):
    enqueued = []
    monkeypatch.setattr(indexing.KnowledgeIndexes, "enqueue", lambda self, pk: enqueued.append(pk))
    client.force_login(admin)
    url = "/admin/knowledge/knowledgeindexversion/"
    response = client.post(url, {"action": "build_new_index"}, follow=True)
    version = KnowledgeIndexVersion.objects.get()
    assert version.status == "queued" and version.activate_when_ready and version.created_by == admin
    assert f"{version} is queued" in response.content.decode()
    # While it is queued, another build is refused with the reason.
    response = client.post(url, {"action": "build_new_index"}, follow=True)
    assert KnowledgeIndexVersion.objects.count() == 1 and "still being trained" in response.content.decode()


def _helpful_votes(pairs):
    """Knowledge answers the visitors voted helpful: the learning pairs."""
    from chatbot.conversations.models import Conversation, Message, Visitor

    visitor = Visitor.objects.create(token_hash="f" * 64)
    conversation = Conversation.objects.create(visitor=visitor)
    for i, (question, article) in enumerate(pairs):
        asked = Message.objects.create(conversation=conversation, seq=2 * i + 1, sender="visitor", text=question)
        Message.objects.create(
            conversation=conversation, seq=2 * i + 2, sender="bot", text="...", reply_to=asked,
            answer_source="article", citation={"article_id": article}, helpful=True,
        )  # fmt: skip


def test_with_fine_tuning_on_a_build_tunes_the_encoder_and_holds_out_pairs(help_center, settings):
    settings.KNOWLEDGE_FINE_TUNE = True
    settings.KNOWLEDGE_FINE_TUNE_MIN_PAIRS = 10
    _helpful_votes(LEARNING_PAIRS)
    version = build()
    assert version.status == "ready" and version.is_active, version.error
    assert version.metrics["fine_tuned_pairs"] == 8  # four fifths; two held out for the guard
    held = {q for q, _ in LEARNING_PAIRS} & {q for q, _ in version.report["holdout"]}
    assert len(held) == 2
    assert (Path(settings.MODEL_DIR) / f"knowledge-v{version.pk}" / "encoder" / "model.safetensors").is_file()
    assert not list(Path(settings.MODEL_DIR).glob(".knowledge-v*-encoder"))  # the build's copy is gone
    answer = serving.ask("how long does express delivery take")
    assert answer is not None and answer.article_id == "shipping"


def test_fine_tuning_is_off_by_default(help_center, settings):
    _helpful_votes(LEARNING_PAIRS)
    version = build()
    assert version.metrics["fine_tuned_pairs"] == 0
    assert not (Path(settings.MODEL_DIR) / f"knowledge-v{version.pk}" / "encoder").exists()
