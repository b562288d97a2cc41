"""The agents' websocket through the real ASGI application: session cookie, origin, events."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from chatbot.agents import presence
from chatbot.agents import services as agents
from chatbot.conversations import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def assert_refused_with_4403(communicator: WebsocketCommunicator) -> None:
    await communicator.connect()
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


# --- Who gets in ------------------------------------------------------------------


async def test_anonymous_is_closed_with_4403(agent_socket):
    await assert_refused_with_4403(agent_socket())


async def test_stranger_is_closed_with_4403(stranger, login_cookie, agent_socket):
    await assert_refused_with_4403(agent_socket(await database_sync_to_async(login_cookie)(stranger)))


async def test_staff_without_the_agent_permission_is_closed_with_4403(db, login_cookie, agent_socket):
    staff = await database_sync_to_async(get_user_model().objects.create_user)("sam", password="x", is_staff=True)
    await assert_refused_with_4403(agent_socket(await database_sync_to_async(login_cookie)(staff)))


async def test_agent_gets_in_and_is_online(agent, connected_agent):
    communicator, hello = await connected_agent(agent)
    assert hello["agent"] == {"id": agent.pk, "name": "Alice"}
    assert await database_sync_to_async(presence.any_agent_online)()
    await communicator.disconnect()
    assert not await database_sync_to_async(presence.any_agent_online)()


async def test_superuser_gets_in(admin, connected_agent):
    communicator, hello = await connected_agent(admin)
    assert hello["agent"]["name"] == "Root"
    await communicator.disconnect()


async def test_foreign_origin_is_refused(agent, login_cookie, agent_socket):
    communicator = agent_socket(await database_sync_to_async(login_cookie)(agent), origin="https://evil.example")
    connected, _ = await communicator.connect()
    assert not connected


# --- Presence ---------------------------------------------------------------------


async def test_agent_online_while_any_tab_is_open_and_colleagues_are_told(
    agent, other_agent, receive_until, connected_agent
):
    bob, _ = await connected_agent(other_agent)
    assert (await bob.receive_json_from(timeout=5))["type"] == "presence"  # bob himself
    tab1, _ = await connected_agent(agent)
    tab2, _ = await connected_agent(agent)
    frame = await receive_until(bob, "presence")
    assert {a["name"] for a in frame[-1]["online"]} == {"Alice", "Bob"}
    await tab1.disconnect()
    online = await database_sync_to_async(lambda: [u.username for u in presence.online_agents()])()
    assert sorted(online) == ["alice", "bob"]
    await tab2.disconnect()
    online = await database_sync_to_async(lambda: [u.username for u in presence.online_agents()])()
    assert online == ["bob"]
    await bob.disconnect()


async def test_heartbeat_answers_pong(agent, receive_until, connected_agent):
    communicator, _ = await connected_agent(agent)
    await receive_until(communicator, "presence")
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from(timeout=5)) == {"type": "pong"}
    await communicator.disconnect()


# --- The live queue and the open conversation ---------------------------------------


async def test_a_handoff_appears_in_the_queue_without_reload(agent, visitor, receive_until, authed, connected_agent):
    dashboard, _ = await connected_agent(agent)
    chat, _ = await authed(visitor)
    await chat.send_json_to({"type": "handoff_request"})
    frames = await receive_until(dashboard, "queue")
    while frames[-1]["status"] != "waiting_for_agent":
        frames = await receive_until(dashboard, "queue")
    assert frames[-1]["conversation_id"] == visitor.conversation_id
    # What the dashboard notifies about: a visitor starts waiting (issue 14).
    assert frames[-1]["entered_queue"] is True and frames[-1]["visitor_message"] is False
    await dashboard.disconnect()
    await chat.disconnect()


async def test_a_visitor_message_in_a_held_conversation_names_its_holder(
    agent, visitor, receive_until, authed, send_message, connected_agent
):
    await database_sync_to_async(services.hand_off)(visitor.conversation_id, "requested")
    await database_sync_to_async(agents.take_over)(visitor.conversation_id, agent)
    dashboard, _ = await connected_agent(agent)
    chat, _ = await authed(visitor)
    await send_message(chat, "are you still there?")
    frames = await receive_until(dashboard, "queue")
    while not frames[-1]["visitor_message"]:
        frames = await receive_until(dashboard, "queue")
    assert frames[-1]["assigned_agent_id"] == agent.pk
    assert frames[-1]["entered_queue"] is False
    await dashboard.disconnect()
    await chat.disconnect()


async def test_open_conversation_streams_messages_and_typing_both_ways(
    agent, visitor, receive_until, authed, send_message, connected_agent
):
    dashboard, _ = await connected_agent(agent)
    chat, _ = await authed(visitor)
    await dashboard.send_json_to({"type": "open", "conversation_id": visitor.conversation_id})
    await receive_until(dashboard, "opened")

    await chat.send_json_to({"type": "typing", "on": True})
    typing = await receive_until(dashboard, "typing")
    assert typing[-1] == {"type": "typing", "conversation_id": visitor.conversation_id, "sender": "visitor", "on": True}

    await database_sync_to_async(agents.take_over)(visitor.conversation.pk, agent)
    await receive_until(chat, "status")
    await dashboard.send_json_to({"type": "typing", "on": True})
    assert (await receive_until(chat, "typing"))[-1] == {"type": "typing", "sender": "agent", "on": True}

    await send_message(chat, "is anyone there?")
    frames = await receive_until(dashboard, "message")
    while frames[-1]["message"]["sender"] != "visitor":
        frames = await receive_until(dashboard, "message")
    assert frames[-1]["message"]["text"] == "is anyone there?"

    await database_sync_to_async(agents.reply)(visitor.conversation.pk, agent, "Yes, Alice here.")
    reply = await receive_until(chat, "message")
    assert (reply[-1]["sender"], reply[-1]["text"], reply[-1]["agent_name"]) == ("agent", "Yes, Alice here.", "Alice")
    await dashboard.disconnect()
    await chat.disconnect()


async def test_an_internal_note_reaches_agents_but_never_the_visitor(
    agent, visitor, receive_until, authed, connected_agent
):
    dashboard, _ = await connected_agent(agent)
    chat, _ = await authed(visitor)
    await dashboard.send_json_to({"type": "open", "conversation_id": visitor.conversation_id})
    await receive_until(dashboard, "opened")
    await database_sync_to_async(agents.add_note)(visitor.conversation.pk, agent, "secret: refund approved")
    note = await receive_until(dashboard, "message")
    assert note[-1]["message"]["internal"] is True and note[-1]["message"]["agent_name"] == "Alice"
    # Something the visitor does see comes next; the note must not come before it.
    await database_sync_to_async(services.hand_off)(visitor.conversation.pk, "requested")
    frames = await receive_until(chat, "status")
    assert all("secret" not in frame.get("text", "") for frame in frames)
    assert [f["sender"] for f in frames if f["type"] == "message"] == ["system"]
    # Nor in the history after a reconnect.
    await chat.disconnect()
    chat, history = await authed(visitor)
    assert all("secret" not in m["text"] for m in history["messages"])
    await dashboard.disconnect()
    await chat.disconnect()


async def test_opening_an_unknown_conversation_is_an_error(agent, receive_until, connected_agent):
    dashboard, _ = await connected_agent(agent)
    await dashboard.send_json_to({"type": "open", "conversation_id": "not-a-uuid"})
    frames = await receive_until(dashboard, "error")
    assert frames[-1]["code"] == "not_found"
    await dashboard.disconnect()
