"""The dashboard's pages and actions over HTTP: who gets in, CSRF, escaping."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from chatbot.agents import services as agents
from chatbot.conversations import services
from chatbot.nlu.models import Feedback

pytestmark = pytest.mark.django_db


def client_for(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def staff_without_permission(db):
    return get_user_model().objects.create_user("sam", password="pw-sam", is_staff=True)


def pages(visitor) -> list[str]:
    return [
        reverse("agents:dashboard"),
        reverse("agents:queue"),
        reverse("agents:conversation", args=[visitor.conversation.pk]),
    ]


def actions(visitor, say) -> list[str]:
    message = say(visitor, "hello")
    pk = visitor.conversation.pk
    return [
        reverse("agents:take", args=[pk]),
        reverse("agents:reply", args=[pk]),
        reverse("agents:note", args=[pk]),
        reverse("agents:hand_back", args=[pk]),
        reverse("agents:close", args=[pk]),
        reverse("agents:correct_intent", args=[pk, message.pk]),
    ]


# --- Doors -------------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_login_page(visitor):
    for url in pages(visitor):
        response = Client().get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("agents:login") + "?next=")


def test_anonymous_posts_are_refused(visitor, fresh, say):
    for url in actions(visitor, say):
        assert Client().post(url, {"text": "x", "intent": "greeting"}).status_code == 403
    assert fresh(visitor).status == "bot"


@pytest.mark.parametrize("who", ["stranger", "staff_without_permission"])
def test_users_without_the_agent_permission_get_403(visitor, who, request, fresh, say):
    client = client_for(request.getfixturevalue(who))
    for url in pages(visitor):
        response = client.get(url)
        assert response.status_code == 403
        assert b"not in the Agents group" in response.content
    for url in actions(visitor, say):
        assert client.post(url, {"text": "x", "intent": "greeting"}).status_code == 403
    assert fresh(visitor).status == "bot" and not fresh(visitor).messages.exclude(sender="visitor").exists()


@pytest.mark.parametrize("who", ["agent", "admin"])
def test_agents_and_superusers_get_in(visitor, who, request):
    client = client_for(request.getfixturevalue(who))
    for url in pages(visitor):
        assert client.get(url).status_code == 200


def test_login_page_lets_agents_in_and_keeps_others_out(agent, stranger):
    response = Client().post(reverse("agents:login"), {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302 and response.url == reverse("agents:dashboard")
    refused = Client().post(reverse("agents:login"), {"username": "charlie", "password": "pw-charlie"})
    assert refused.status_code == 200 and b"may not use the agent dashboard" in refused.content


# --- Actions -----------------------------------------------------------------------------


def test_actions_need_the_csrf_token(visitor, agent, fresh):
    client = client_for(agent, enforce_csrf_checks=True)
    assert client.post(reverse("agents:take", args=[visitor.conversation.pk])).status_code == 403
    assert fresh(visitor).status == "bot"
    client.get(reverse("agents:dashboard"))  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        reverse("agents:take", args=[visitor.conversation.pk]), HTTP_X_CSRFTOKEN=token, HTTP_ACCEPT="application/json"
    )
    assert response.json() == {"ok": True}
    assert fresh(visitor).assigned_agent == agent


def test_take_reply_note_and_close_through_the_dashboard(visitor, agent, fresh):
    client = client_for(agent)
    pk = visitor.conversation.pk
    json = {"HTTP_ACCEPT": "application/json"}
    assert client.post(reverse("agents:take", args=[pk]), **json).json() == {"ok": True}
    reply = client.post(reverse("agents:reply", args=[pk]), {"text": "Hi there"}, **json).json()
    assert reply["message"]["sender"] == "agent" and reply["message"]["agent_name"] == "Alice"
    note = client.post(reverse("agents:note", args=[pk]), {"text": "check refund"}, **json).json()
    assert note["message"]["internal"] is True
    assert client.post(reverse("agents:close", args=[pk])).status_code == 302  # a plain form: back to the page
    assert fresh(visitor).status == "closed"


def test_a_refused_action_says_why(visitor, agent, other_agent):
    agents.take_over(visitor.conversation.pk, other_agent)
    response = client_for(agent).post(
        reverse("agents:take", args=[visitor.conversation.pk]), HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 409
    assert response.json() == {"error": "taken", "message": "Bob already took this conversation."}
    plain = client_for(agent).post(reverse("agents:reply", args=[visitor.conversation.pk]), {"text": "hi"}, follow=True)
    assert b"Take the conversation first." in plain.content


def test_correcting_an_intent_from_the_dropdown(visitor, demo_intents, agent, say, predicted):
    message = say(visitor, "my parcel is lost")
    services.answer_visitor_message(message.pk, predicted("returns", 0.3))
    url = reverse("agents:correct_intent", args=[visitor.conversation.pk, message.pk])
    page = client_for(agent).get(reverse("agents:conversation", args=[visitor.conversation.pk])).content.decode()
    assert url in page and '<option value="order_status">' in page and "returns <b>30%</b>" in page
    response = client_for(agent).post(url, {"intent": "order_status"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"ok": True}
    feedback = Feedback.objects.get(source="correction")
    assert (feedback.suggested_intent, feedback.predicted_intent, feedback.created_by) == (
        "order_status",
        "returns",
        agent,
    )


def test_a_message_of_another_conversation_cannot_be_corrected_through_this_one(visitor, other_visitor, agent, say):
    message = say(other_visitor, "hi")
    url = reverse("agents:correct_intent", args=[visitor.conversation.pk, message.pk])
    assert client_for(agent).post(url, {"intent": "greeting"}).status_code == 404


# --- Stored XSS ----------------------------------------------------------------------------


def test_visitor_text_is_escaped_in_the_queue_and_the_transcript(visitor, agent, say):
    services.identify(visitor.conversation, "<b>Eve</b>", None)
    say(visitor, "<script>alert('x')</script><img src=x onerror=alert(1)>")
    services.hand_off(visitor.conversation.pk, "requested")
    client = client_for(agent)
    for url in (reverse("agents:queue"), reverse("agents:conversation", args=[visitor.conversation.pk])):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>Eve</b>" not in page
        assert "&lt;script&gt;alert(" in page and "&lt;b&gt;Eve&lt;/b&gt;" in page


def test_queue_shows_waiting_visitors_with_offline_badge(visitor, agent, say):
    say(visitor, "anyone?")
    services.hand_off(visitor.conversation.pk, "requested")  # nobody online
    page = client_for(agent).get(reverse("agents:queue")).content.decode()
    assert "Offline message" in page and "anyone?" in page and "Asked for a person" in page
