"""Why the help center answered, or declined (issue 17 for issue 16's answers): the
passages it weighed with their BM25, dense and fused scores, the threshold, the
chosen sentences and the index version; computed on demand by the explanation task
on the inference queue, cached per message and index version, shown to agents and
staff (dashboard, review inbox item, admin message view) and never to visitors."""

import pytest
from django.test import Client
from django.urls import reverse

from chatbot import realtime
from chatbot.conversations import services
from chatbot.knowledge import serving
from chatbot.knowledge.models import KnowledgeIndexVersion
from chatbot.nlu import explanations, tasks
from chatbot.nlu.models import Feedback, KnowledgeExplanation

pytestmark = pytest.mark.django_db

ANSWERABLE = "how long is the password reset link valid"
UNANSWERABLE = "where is your shop in <b>paris</b>"
# The abstention score is a probability: the answerable question scores about 0.999 on
# the tiny help center, the unanswerable one about 0.06.
THRESHOLD = 0.9


@pytest.fixture(scope="module")
def index_dir(tiny_index, tmp_path_factory):
    saved = (tiny_index.config.threshold, tiny_index.config.threshold_rule)
    tiny_index.with_threshold(THRESHOLD, "chosen on test questions")
    try:
        return tiny_index.save(tmp_path_factory.mktemp("kb") / "index")
    finally:
        tiny_index.with_threshold(*saved)


@pytest.fixture
def index_version(index_dir):
    return KnowledgeIndexVersion.objects.create(status="ready", is_active=True, artifact_dir=str(index_dir))


@pytest.fixture
def asked(visitor, say, predicted, index_version):
    """A visitor message no intent model answered, put to the real index: (question, reply)."""

    def asked(text: str):
        question = say(visitor, text)
        reply = services.answer_visitor_message(question.pk, predicted("", 0.0, out_of_scope=True), serving.ask)
        return question, reply

    return asked


@pytest.fixture
def pushes(monkeypatch):
    sent = []
    monkeypatch.setattr(
        realtime, "push", lambda group, event: sent.append((group, event)) if "explanation" in event["type"] else None
    )
    return sent


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.explain_message, "delay", lambda *args: sent.append(args))
    return sent


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_a_knowledge_answer_is_explained_by_the_index_version_that_gave_it(
    asked, index_version, queued, committed, pushes
):
    question, reply = asked(ANSWERABLE)
    assert (reply.answer_source, reply.knowledge_index_id) == ("article", index_version.pk)

    with committed():
        why = explanations.request_why(question.pk)
    assert why.status == "pending" and why.intent is None  # no intent model answered it
    assert queued == [(question.pk, None, index_version.pk)]  # the one explanation task
    tasks.explain_message(*queued[0])

    row = KnowledgeExplanation.objects.get(message=question, index_version=index_version)
    assert row.status == "ready", row.error
    data = row.data
    assert data["answered"] is True and data["threshold"] == THRESHOLD
    assert data["threshold_rule"] == "chosen on test questions"
    assert data["score"] == pytest.approx(reply.answer_score, abs=1e-3)  # the same decision, computed again
    top = data["passages"][0]
    assert top["article_id"] == "password" and top["chosen"]
    assert {"bm25", "dense", "fused", "heading", "text", "title"} <= set(top)
    assert data["chosen"]["text"] == reply.text
    assert data["chosen"]["sentences"][0] == "The reset link we send is valid for 1 hour."

    # Pushed to the agents only, once; asked again it comes from the cache.
    assert [group for group, _ in pushes] == [realtime.AGENTS_GROUP]
    event = pushes[0][1]
    assert event["status"] == "ready" and event["index_version"] == index_version.pk
    assert event["knowledge"]["data"]["passages"][0]["article_id"] == "password"
    tasks.explain_message(*queued[0])
    with committed():
        again = explanations.request_why(question.pk)
    assert again.status == "ready" and len(queued) == 1 and len(pushes) == 1


def test_a_fallback_after_a_declined_lookup_shows_the_best_passage_score_against_the_threshold(
    asked, index_version, queued, committed, pushes
):
    question, reply = asked(UNANSWERABLE)
    assert (reply.answer_source, reply.knowledge_index_id) == ("fallback", index_version.pk)
    with committed():
        explanations.request_why(question.pk)
    tasks.explain_message(*queued[0])
    data = KnowledgeExplanation.objects.get().data
    assert data["answered"] is False and data["chosen"] is None
    assert data["score"] < data["threshold"] == THRESHOLD
    assert data["passages"] and not any(p["chosen"] for p in data["passages"])


def test_a_message_with_an_intent_model_gets_both_parts_from_one_task(
    asked, active_model, index_version, queued, committed, pushes, visitor, say, predicted
):
    question = say(visitor, ANSWERABLE)
    prediction = services.BotPrediction("password_reset", 0.2, False, active_model.pk)  # unsure: the index answers
    services.answer_visitor_message(question.pk, prediction, serving.ask)
    with committed():
        why = explanations.request_why(question.pk)
    assert why.intent is not None and why.knowledge is not None
    assert queued == [(question.pk, active_model.pk, index_version.pk)]
    tasks.explain_message(*queued[0])
    question.refresh_from_db()
    body = explanations.payload(explanations.cached_why(question))
    assert body["status"] == "ready" and body["model_version"] == active_model.pk
    assert body["explanation"]["text"] == ANSWERABLE and body["knowledge"]["data"]["answered"] is True
    assert len(pushes) == 1


def test_a_damaged_index_fails_with_a_reason_and_can_be_asked_again(
    asked, index_version, queued, committed, pushes, monkeypatch
):
    question, _ = asked(ANSWERABLE)
    explain, broken = serving.explain, [True]

    def explain_or_fail(version_id, text):
        if broken:
            raise OSError("index gone")
        return explain(version_id, text)

    monkeypatch.setattr(serving, "explain", explain_or_fail)
    with committed():
        explanations.request_why(question.pk)
    tasks.explain_message(*queued[0])
    row = KnowledgeExplanation.objects.get()
    assert row.status == "failed" and "index gone" in row.error
    broken.clear()
    with committed():
        assert explanations.request_why(question.pk).status == "pending"
    assert len(queued) == 2
    tasks.explain_message(*queued[1])
    assert KnowledgeExplanation.objects.get().status == "ready"


# --- Who sees it ------------------------------------------------------------------------------


def why_url(message) -> str:
    return reverse("agents:explanation", args=[message.conversation_id, message.pk])


def test_agents_see_it_in_the_dashboard_and_visitors_and_strangers_never(
    asked, index_version, visitor, agent, stranger, queued, committed, pushes
):
    question, _ = asked(ANSWERABLE)
    for client in (Client(), Client(HTTP_AUTHORIZATION=f"Bearer {visitor.token}")):
        assert client.post(why_url(question)).status_code == 403
    denied = Client()
    denied.force_login(stranger)
    assert denied.post(why_url(question)).status_code == 403 and denied.get(why_url(question)).status_code == 403
    assert queued == [] and not KnowledgeExplanation.objects.exists()

    client = Client()
    client.force_login(agent)
    with committed():
        assert client.post(why_url(question)).status_code == 202
    tasks.explain_message(*queued[0])
    body = client.get(why_url(question)).json()
    assert body["status"] == "ready" and body["model_version"] is None
    assert body["knowledge"]["data"]["passages"][0]["title"] == "Resetting your password"


def test_the_review_inbox_item_and_the_admin_message_view_show_the_passages_considered(
    asked, index_version, admin, queued, committed, pushes
):
    question, reply = asked(UNANSWERABLE)  # an unanswerable question: a fallback in the review inbox
    feedback = Feedback.objects.get(message=question, source="fallback")
    client = Client()
    client.force_login(admin)
    pages = [
        reverse("admin:nlu_feedback_review", args=[feedback.pk]),
        reverse("admin:conversations_message_change", args=[question.pk]),
    ]
    with committed():
        for url in pages:
            assert b'id="explanation-pending"' in client.get(url).content
    assert queued == [(question.pk, None, index_version.pk)]
    tasks.explain_message(*queued[0])
    data = KnowledgeExplanation.objects.get().data
    for url in pages:
        html = client.get(url).content.decode()
        assert 'id="knowledge-passages"' in html and "declined" in html
        assert f"against threshold {data['threshold']:.3f}" in html
        for passage in data["passages"]:
            assert passage["title"] in html and f"{passage['bm25']:.3f}" in html
        assert f"v{index_version.pk}" in html
    # The list shows what the help center considered, and so does an unhelpful answer.
    listing = client.get(reverse("admin:nlu_feedback_changelist")).content.decode()
    assert "abstained" in listing and reply.knowledge_considered[0]["title"] in listing


def test_a_knowledge_answer_voted_unhelpful_is_in_the_review_inbox_with_its_passages(
    asked, index_version, visitor, admin, queued, committed, pushes
):
    question, reply = asked(ANSWERABLE)
    services.record_article_feedback(visitor.conversation, reply.pk, False)
    feedback = Feedback.objects.get(message=question, source="thumbs_down")
    client = Client()
    client.force_login(admin)
    assert "voted not helpful" in client.get(reverse("admin:nlu_feedback_changelist")).content.decode()
    url = reverse("admin:nlu_feedback_review", args=[feedback.pk])
    with committed():
        client.get(url)
    tasks.explain_message(*queued[0])
    html = client.get(url).content.decode()
    assert 'id="knowledge-sentences"' in html and "answered from “Resetting your password”" in html
    assert html.count("<tr") >= len(KnowledgeExplanation.objects.get().data["passages"])
