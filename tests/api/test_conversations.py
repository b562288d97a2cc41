"""Conversations through the API: filters, cursor pages, messages as an agent or
the bot, the actions, validation errors that write nothing, and idempotency."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.agents import services as agents
from chatbot.conversations import services as chat
from chatbot.conversations.models import Conversation, Message, Visitor
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


def conversations(n: int, **fields) -> list[Conversation]:
    visitor = Visitor.objects.create(token_hash=f"h{Visitor.objects.count()}")
    made = Conversation.objects.bulk_create([Conversation(visitor=visitor, **fields) for _ in range(n)])
    # Some share a created_at: the cursor must still neither skip nor repeat one.
    stamp = timezone.now() - timedelta(days=1)
    for i, c in enumerate(made):
        Conversation.objects.filter(pk=c.pk).update(created_at=stamp + timedelta(seconds=i // 3))
    return made


def all_pages(client, **params) -> tuple[list[dict], int]:
    seen, pages, cursor = [], 0, None
    while True:
        response = client.get("/api/v1/conversations", {**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        body = response.json()
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


def test_cursor_pages_of_100_cover_every_conversation_once_newest_first(reader):
    made = conversations(250)
    items, pages = all_pages(reader)
    assert pages == 3
    assert sorted(i["id"] for i in items) == sorted(str(c.pk) for c in made)
    keys = [(i["created_at"], i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)


def test_a_conversation_created_while_paging_does_not_shift_the_pages(reader):
    conversations(150)
    first = reader.get("/api/v1/conversations").json()
    Conversation.objects.create(visitor=Visitor.objects.first())  # newest of all: belongs before page one
    second = reader.get("/api/v1/conversations", {"cursor": first["next_cursor"]}).json()
    assert len(first["items"]) + len(second["items"]) == 150
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


def test_filters_status_agent_and_date_range(reader, agent, other_agent):
    conversations(3, status=Conversation.Status.CLOSED)
    mine = conversations(2, status=Conversation.Status.WITH_AGENT, assigned_agent=agent)
    conversations(4, status=Conversation.Status.WITH_AGENT, assigned_agent=other_agent)
    assert len(all_pages(reader, status="closed")[0]) == 3
    assert {i["id"] for i in all_pages(reader, assigned_agent=agent.pk)[0]} == {str(c.pk) for c in mine}
    assert len(all_pages(reader, status="with_agent", limit=3)[0]) == 6
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert all_pages(reader, created_after=future)[0] == []
    assert len(all_pages(reader, created_before=future)[0]) == 9


@pytest.mark.parametrize(
    "params,code",
    [
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 101}, "invalid_limit"),
    ],
)
def test_bad_paging_is_a_400_problem(reader, params, code):
    assert_problem(reader.get("/api/v1/conversations", params), 400, code)


def test_bad_filter_is_a_validation_problem(reader):
    body = assert_problem(reader.get("/api/v1/conversations", {"status": "sleeping"}), 422, "validation_error")
    assert body["errors"][0]["loc"][-1] == "status"


def test_get_has_the_visitor_and_every_message(reader, visitor, agent):
    agents.take_over(visitor.conversation.pk, agent)
    agents.reply(visitor.conversation.pk, agent, "Hi, Alice here")
    agents.add_note(visitor.conversation.pk, agent, "VIP")
    body = reader.get(f"/api/v1/conversations/{visitor.conversation.pk}").json()
    assert body["visitor"]["id"] == visitor.conversation.visitor_id
    assert [(m["sender"], m["internal"]) for m in body["messages"]][-2:] == [("agent", False), ("agent", True)]
    assert_problem(reader.get("/api/v1/conversations/9d4b2a4e-0000-4000-8000-000000000000"), 404, "not_found")


def test_agent_message_needs_the_conversation_to_be_the_agents(writer, visitor):
    url = f"/api/v1/conversations/{visitor.conversation.pk}/messages"
    assert_problem(writer.post(url, {"text": "hello"}), 409, "not_yours")
    assert writer.post(f"/api/v1/conversations/{visitor.conversation.pk}/assign", {}).status_code == 200
    response = writer.post(url, {"text": "hello"})
    assert response.status_code == 201
    assert response.json()["sender"] == "agent"
    assert Message.objects.filter(sender="agent", text="hello").count() == 1


def test_bot_message_and_who_may_be_named(writer, visitor, stranger):
    url = f"/api/v1/conversations/{visitor.conversation.pk}/messages"
    response = writer.post(url, {"text": "Your order shipped.", "sender": "bot"})
    assert response.status_code == 201 and response.json()["sender"] == "bot"
    assert_problem(writer.post(url, {"text": "x", "agent_id": stranger.pk}), 422, "not_an_agent")
    assert_problem(writer.post(url, {"text": "x", "agent_id": 999999}), 422, "unknown_agent")
    assert_problem(writer.post(url, {"text": "x", "sender": "bot", "agent_id": stranger.pk}), 422, "agent_for_bot")


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {"text": "hi", "sender": "visitor"}, {"text": 5}],
)
def test_invalid_message_is_a_problem_and_writes_nothing(writer, visitor, body):
    before = Message.objects.count()
    url = f"/api/v1/conversations/{visitor.conversation.pk}/messages"
    assert_problem(writer.post(url, {**body, "sender": body.get("sender", "bot")}), 422, "validation_error")
    assert Message.objects.count() == before


def test_malformed_json_is_a_problem(writer, visitor):
    response = writer.client.post(
        f"/api/v1/conversations/{visitor.conversation.pk}/messages",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {writer.token}",
    )
    assert response.status_code in (400, 422)
    assert response["Content-Type"].startswith("application/problem+json")


def test_unknown_path_and_method_are_problems(reader):
    assert_problem(reader.get("/api/v1/nothing-here"), 404, "not_found")
    response = reader.client.put("/api/v1/intents", HTTP_AUTHORIZATION=f"Bearer {reader.token}")
    assert_problem(response, 405, "method_not_allowed")


# --- Actions ------------------------------------------------------------------------


def test_hand_off_assign_note_close(writer, visitor, agent):
    base = f"/api/v1/conversations/{visitor.conversation.pk}"
    handed = writer.post(f"{base}/handoff", {"reason": "crm_rule"})
    assert handed.status_code == 200 and handed.json()["status"] == "waiting_for_agent"
    assert_problem(writer.post(f"{base}/handoff", {}), 409, "already_handed_off")
    assigned = writer.post(f"{base}/assign", {"agent_id": agent.pk})
    assert assigned.json()["status"] == "with_agent" and assigned.json()["assigned_agent_id"] == agent.pk
    note = writer.post(f"{base}/notes", {"text": "refund approved"})
    assert note.status_code == 201 and note.json()["internal"] is True
    closed = writer.post(f"{base}/close", {})
    assert closed.json()["status"] == "closed"
    assert_problem(writer.post(f"{base}/close", {}), 409, "closed")


def test_assign_to_a_conversation_another_agent_has_is_refused(writer, visitor, other_agent):
    agents.take_over(visitor.conversation.pk, other_agent)
    response = writer.post(f"/api/v1/conversations/{visitor.conversation.pk}/assign", {})
    assert_problem(response, 409, "taken")


# --- Idempotency --------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_creates_one_message(writer, visitor):
    url = f"/api/v1/conversations/{visitor.conversation.pk}/messages"
    key = {"Idempotency-Key": "retry-1"}
    first = writer.post(url, {"text": "once", "sender": "bot"}, headers=key)
    again = writer.post(url, {"text": "once", "sender": "bot"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Message.objects.filter(text="once").count() == 1
    other = writer.post(url, {"text": "once", "sender": "bot"}, headers={"Idempotency-Key": "retry-2"})
    assert other.status_code == 201 and Message.objects.filter(text="once").count() == 2


def test_the_same_key_for_another_request_is_refused(writer, visitor):
    url = f"/api/v1/conversations/{visitor.conversation.pk}/messages"
    writer.post(url, {"text": "first", "sender": "bot"}, headers={"Idempotency-Key": "k"})
    response = writer.post(url, {"text": "second", "sender": "bot"}, headers={"Idempotency-Key": "k"})
    assert_problem(response, 422, "idempotency_key_reused")
    assert not Message.objects.filter(text="second").exists()


def test_a_failed_request_does_not_use_up_its_key(writer, visitor, agent):
    url = f"/api/v1/conversations/{visitor.conversation.pk}/messages"
    key = {"Idempotency-Key": "after-assign"}
    assert_problem(writer.post(url, {"text": "hi"}, headers=key), 409, "not_yours")
    chat.hand_off(visitor.conversation.pk, "test")
    agents.take_over(visitor.conversation.pk, agent)
    assert writer.post(url, {"text": "hi"}, headers=key).status_code == 201


def test_keys_belong_to_one_token(writer, visitor, agent):
    from tests.api.conftest import ApiClient, make_token

    url = f"/api/v1/conversations/{visitor.conversation.pk}/messages"
    other = ApiClient(make_token(agent, ["write"]))
    for client in (writer, other):
        assert (
            client.post(url, {"text": "x", "sender": "bot"}, headers={"Idempotency-Key": "shared"}).status_code == 201
        )
    assert Message.objects.filter(text="x").count() == 2
