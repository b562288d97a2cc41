"""The dashboard's "Why?": who may ask (agents and staff; never visitors or
strangers), 202 then the pushed frame, and the visitor's socket that cannot ask
and never hears of it."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from chatbot.conversations.models import Message
from chatbot.nlu import explanations, tasks
from chatbot.nlu.models import Explanation

FAKE = {"text": "where is my order", "intent": "order_status", "words": [], "neighbours": [], "runners_up": []}


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def staff_without_permission(db):
    return get_user_model().objects.create_user("sam", password="pw-sam", is_staff=True)


@pytest.fixture
def answered_message(visitor, say, active_model):
    message = say(visitor, "where is my order")
    Message.objects.filter(pk=message.pk).update(intent="order_status", confidence=0.9, model_version=active_model)
    message.refresh_from_db()
    return message


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.explain_message, "delay", lambda *args: sent.append(args))
    return sent


def why_url(message) -> str:
    return reverse("agents:explanation", args=[message.conversation_id, message.pk])


# --- Who may ask -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", [None, "stranger"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_and_strangers_get_403(who, method, request, answered_message, queued):
    client = client_for(request.getfixturevalue(who) if who else None)
    response = getattr(client, method)(why_url(answered_message))
    assert response.status_code == 403
    assert queued == [] and not Explanation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["agent", "admin", "staff_without_permission"])
def test_agents_and_staff_may_ask(who, request, answered_message, queued, django_capture_on_commit_callbacks):
    client = client_for(request.getfixturevalue(who))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(why_url(answered_message))
    assert response.status_code == 202
    assert response.json() == {
        "message_id": answered_message.pk,
        "model_version": answered_message.model_version_id,
        "status": "pending",
    }
    assert queued == [(answered_message.pk, answered_message.model_version_id)]


@pytest.mark.django_db
def test_the_answer_is_200_with_the_explanation_once_computed(agent, answered_message, queued, monkeypatch):
    client = client_for(agent)
    client.post(why_url(answered_message))
    assert client.get(why_url(answered_message)).status_code == 202
    monkeypatch.setattr(explanations, "explain_text", lambda version, text: {**FAKE, "text": text})
    tasks.explain_message(answered_message.pk, answered_message.model_version_id)

    for response in (client.get(why_url(answered_message)), client.post(why_url(answered_message))):
        assert response.status_code == 200
        assert response.json()["status"] == "ready"
        assert response.json()["explanation"]["text"] == "where is my order"


@pytest.mark.django_db
def test_a_message_of_another_conversation_or_one_no_model_answered_is_refused(
    agent, answered_message, other_visitor, say, queued
):
    client = client_for(agent)
    foreign = reverse("agents:explanation", args=[other_visitor.conversation.pk, answered_message.pk])
    assert client.post(foreign).status_code == 404
    unanswered = say(other_visitor, "hello")
    response = client.post(why_url(unanswered))
    assert response.status_code == 409
    assert "nothing to explain" in response.json()["message"]
    assert queued == []


@pytest.mark.django_db
def test_a_post_without_the_csrf_token_is_refused(agent, answered_message, queued):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(why_url(answered_message)).status_code == 403
    assert queued == []


# --- The socket frames -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_agent_who_opened_the_conversation_gets_the_frame_and_the_visitor_nothing(
    agent, visitor, answered_message, connected_agent, authed, receive_until, monkeypatch
):
    monkeypatch.setattr(explanations, "explain_text", lambda version, text: {**FAKE, "text": text})
    dashboard, _ = await connected_agent(agent)
    await dashboard.send_json_to({"type": "open", "conversation_id": visitor.conversation_id})
    await receive_until(dashboard, "opened")
    widget, _ = await authed(visitor)

    await database_sync_to_async(tasks.explain_message)(answered_message.pk, answered_message.model_version_id)

    frame = (await receive_until(dashboard, "explanation", within=5))[-1]
    assert frame["message_id"] == answered_message.pk and frame["status"] == "ready"
    assert frame["explanation"]["intent"] == "order_status"
    await asyncio.sleep(0.3)
    assert await widget.receive_nothing(timeout=0.5)
    await dashboard.disconnect()
    await widget.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["explain", "why", "explanation"])
async def test_the_visitor_socket_has_no_way_to_ask(kind, visitor, answered_message, authed, receive_until, queued):
    widget, _ = await authed(visitor)
    await widget.send_json_to({"type": kind, "message_id": answered_message.pk})
    frames = await receive_until(widget, "error", within=5)
    assert frames[-1]["code"] == "unknown_type"
    assert not any("explanation" in frame for frame in frames)
    assert queued == []
    assert not await Explanation.objects.aexists()
    await widget.disconnect()


@pytest.mark.django_db
def test_the_visitors_session_token_does_not_open_the_endpoint(visitor, answered_message, queued):
    """The widget's token is not a login: as a header or a cookie it is anonymous here."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {visitor.token}")
    client.cookies["chat_token"] = visitor.token
    assert client.post(why_url(answered_message)).status_code == 403
    assert client.get(why_url(answered_message)).status_code == 403
