"""The help center beside the agent's reply box: articles suggested for the visitor's
latest message (the active index, on the inference queue, pushed to the agents who
opened the conversation) and a search over the published articles; agents only."""

import pytest
from django.test import Client
from django.urls import reverse

from chatbot import realtime
from chatbot.agents import help_center, tasks
from chatbot.celery import Queue
from chatbot.knowledge.models import Article, KnowledgeIndexVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def index_dir(tiny_index, tmp_path_factory):
    return tiny_index.save(tmp_path_factory.mktemp("kb") / "index")


@pytest.fixture
def pushes(monkeypatch):
    sent = []
    monkeypatch.setattr(realtime, "push", lambda group, event: sent.append((group, event)))
    return sent


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.suggest_articles, "delay", lambda *args: sent.append(args))
    return sent


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Suggestions -------------------------------------------------------------------------------


def test_the_task_runs_on_the_inference_queue():
    assert tasks.suggest_articles.queue == Queue.INFERENCE


def test_suggestions_for_a_visitor_message_come_from_the_active_index_and_go_to_the_agents(
    visitor, say, index_dir, pushes
):
    version = KnowledgeIndexVersion.objects.create(status="ready", is_active=True, artifact_dir=str(index_dir))
    message = say(visitor, "my parcel still has not arrived, how long does delivery take?")
    pushes.clear()

    found = help_center.suggest_articles(message.pk)

    assert found[0]["article_id"] == "shipping" and len(found) == help_center.SUGGESTIONS
    assert [group for group, _ in pushes] == [realtime.AGENTS_GROUP]  # never the visitor's conversation
    event = pushes[0][1]
    assert event["type"] == "article.suggestions" and event["message_id"] == message.pk
    assert event["conversation_id"] == str(message.conversation_id) and event["index_version"] == version.pk
    assert event["articles"][0] == {**found[0], "url": "https://shop.example/help/shipping"}
    assert "Standard delivery takes 3-5 business days" in event["articles"][0]["snippet"]


def test_without_an_active_index_or_a_visitor_message_nothing_is_suggested(visitor, say, pushes, index_dir):
    message = say(visitor, "how long does delivery take?")
    pushes.clear()
    assert help_center.suggest_articles(message.pk) == [] and pushes == []
    KnowledgeIndexVersion.objects.create(status="ready", is_active=True, artifact_dir=str(index_dir / "missing"))
    assert help_center.suggest_articles(message.pk) == [] and pushes == []  # a broken index: no suggestions
    assert help_center.suggest_articles(10**9) == []


def test_the_dashboard_asks_for_the_latest_visitor_message(visitor, say, agent, queued):
    url = reverse("agents:suggest_articles", args=[visitor.conversation_id])
    client = logged_in(agent)
    response = client.post(url)
    assert (response.status_code, response.json(), queued) == (200, {"message_id": None}, [])
    say(visitor, "first")
    latest = say(visitor, "where is my parcel")
    response = client.post(url)
    assert response.status_code == 202 and response.json() == {"message_id": latest.pk}
    assert queued == [(latest.pk,)]


def test_only_agents_may_ask_for_suggestions(visitor, say, stranger, queued):
    say(visitor, "where is my parcel")
    url = reverse("agents:suggest_articles", args=[visitor.conversation_id])
    assert Client().post(url).status_code == 403
    assert Client(HTTP_AUTHORIZATION=f"Bearer {visitor.token}").post(url).status_code == 403
    assert logged_in(stranger).post(url).status_code == 403
    assert queued == []


def test_an_unknown_conversation_is_404(agent, queued):
    url = reverse("agents:suggest_articles", args=["00000000-0000-0000-0000-000000000000"])
    assert logged_in(agent).post(url).status_code == 404


# --- Search ----------------------------------------------------------------------------------


@pytest.fixture
def articles(db):
    Article.objects.create(
        slug="refunds",
        title="Refunds",
        url="https://shop.example/help/refunds",
        body="Your refund reaches your card within 5 business days after we receive the return.",
    )
    Article.objects.create(
        slug="returns",
        title="Returning an item",
        url="https://shop.example/help/returns",
        body="Start a return within 30 days. We email you a label; the refund follows.",
        keywords="send back",
    )
    Article.objects.create(
        slug="draft", title="Refunds (draft)", body="Refund text not yet published.", published=False
    )


def test_search_finds_published_articles_title_first(agent, articles):
    response = logged_in(agent).get(reverse("agents:search_articles"), {"q": "refund"})
    assert response.status_code == 200
    found = response.json()["articles"]
    assert [a["article_id"] for a in found] == ["refunds", "returns"]  # the title match first, no draft
    assert found[0] == {
        "article_id": "refunds",
        "title": "Refunds",
        "url": "https://shop.example/help/refunds",
        "snippet": "Your refund reaches your card within 5 business days after we receive the return.",
    }
    keywords = logged_in(agent).get(reverse("agents:search_articles"), {"q": "send back"}).json()["articles"]
    assert [a["article_id"] for a in keywords] == ["returns"]


def test_an_empty_search_is_refused_with_a_reason(agent, articles):
    for query in ({}, {"q": "   "}):
        response = logged_in(agent).get(reverse("agents:search_articles"), query)
        assert response.status_code == 400 and "Type a few words" in response.json()["message"]


def test_only_agents_may_search(stranger, articles):
    url = reverse("agents:search_articles")
    assert Client().get(url, {"q": "refund"}).status_code == 302  # to the login page
    assert logged_in(stranger).get(url, {"q": "refund"}).status_code == 403
