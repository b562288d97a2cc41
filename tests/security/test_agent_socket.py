"""The agents' websocket carries every live chat: only the server's own pages may open
it, and it lives no longer than the agent's login and agent rights."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from chatbot import realtime
from chatbot.agents.consumers import AgentConsumer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SERVER = "127.0.0.1:8000"


def application_as_started():
    """The websocket stack as chatbot.asgi builds it at server start, from the settings now."""
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.security.websocket import OriginValidator

    from chatbot.asgi import allowed_websocket_origins
    from chatbot.routing import websocket_urlpatterns

    return OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), allowed_websocket_origins())


async def opens(cookie: str, origin: str, host: str = SERVER, **headers: str) -> bool:
    """Does the dashboard's socket open and say hello for this handshake?"""
    from channels.testing import WebsocketCommunicator

    raw = [(b"origin", origin.encode()), (b"host", host.encode()), (b"cookie", f"sessionid={cookie}".encode())]
    raw += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    communicator = WebsocketCommunicator(application_as_started(), "/ws/agent/", headers=raw)
    connected, _ = await communicator.connect()
    if not connected:
        return False
    frame = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return '"hello"' in frame.get("text", "")


# --- Who may open it ---------------------------------------------------------------


@override_settings(WIDGET_ORIGINS=["https://shop.example"], ALLOWED_HOSTS=["127.0.0.1", "chat.example.com"])
@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example",  # a widget site: its scripts may open /ws/chat/, never the dashboard's
        "http://127.0.0.1:9000",  # the server's host on another port
        "https://127.0.0.1:8000",  # ...or another scheme
        "http://chat.example.com",  # another allowed host
    ],
)
async def test_the_agent_socket_refuses_every_origin_but_the_servers_own(agent, login_cookie, origin):
    cookie = await database_sync_to_async(login_cookie)(agent)
    assert await opens(cookie, "http://" + SERVER)  # the dashboard's own page
    assert not await opens(cookie, origin)


@override_settings(WIDGET_ORIGINS=["https://shop.example"])
async def test_the_widget_socket_still_accepts_the_widget_sites():
    from channels.testing import WebsocketCommunicator

    communicator = WebsocketCommunicator(
        application_as_started(), "/ws/chat/", headers=[(b"origin", b"https://shop.example")]
    )
    assert (await communicator.connect())[0]
    await communicator.disconnect()


@override_settings(ALLOWED_HOSTS=["chat.example.com"], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
async def test_behind_the_proxy_the_own_origin_is_https(agent, login_cookie):
    cookie = await database_sync_to_async(login_cookie)(agent)
    proxied = {"host": "chat.example.com", "x_forwarded_proto": "https"}
    assert await opens(cookie, "https://chat.example.com", **proxied)
    assert not await opens(cookie, "http://chat.example.com", **proxied)


# --- It ends with the login -----------------------------------------------------------


def logged_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def assert_closed_and_silent(communicator) -> None:
    """Closed with 4403, and a queue event pushed afterwards never reaches it."""
    frames = []
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        frames.append(output)
    assert output == {"type": "websocket.close", "code": 4403}
    await database_sync_to_async(realtime.push)(
        realtime.AGENTS_GROUP, {"type": "queue.update", "conversation_id": "x", "status": "waiting"}
    )
    assert await communicator.receive_nothing(timeout=1)


async def test_logging_out_closes_the_agent_socket(agent, agent_socket):
    client = await database_sync_to_async(logged_in_client)(agent)
    communicator = agent_socket(client.cookies["sessionid"].value)
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"

    response = await database_sync_to_async(client.post)("/agent/logout/")
    assert response.status_code in (200, 302)

    await assert_closed_and_silent(communicator)


async def test_losing_the_agents_group_closes_the_agent_socket(agent, connected_agent):
    communicator, _ = await connected_agent(agent)
    group = await Group.objects.aget(name="Agents")
    await database_sync_to_async(agent.groups.remove)(group)
    await assert_closed_and_silent(communicator)


async def test_a_group_losing_the_permission_closes_its_agents_sockets(agent, connected_agent):
    communicator, _ = await connected_agent(agent)
    group = await Group.objects.aget(name="Agents")
    await database_sync_to_async(group.permissions.clear)()
    await assert_closed_and_silent(communicator)


async def test_an_ended_session_closes_the_agent_socket_on_the_next_heartbeat(agent, connected_agent, monkeypatch):
    # No signal at all (the session expired, or was deleted in the database): the
    # socket's own periodic re-check finds it, even if the page never sends a frame.
    monkeypatch.setattr(AgentConsumer, "recheck_s", 0.2)
    communicator, _ = await connected_agent(agent)
    await Session.objects.all().adelete()
    await assert_closed_and_silent(communicator)


async def test_a_frame_after_the_session_ended_is_not_answered(agent, connected_agent, monkeypatch):
    monkeypatch.setattr(AgentConsumer, "recheck_s", 3600)
    communicator, _ = await connected_agent(agent)
    await Session.objects.all().adelete()
    await communicator.send_json_to({"type": "ping"})
    await assert_closed_and_silent(communicator)


async def test_a_live_login_keeps_its_socket_through_heartbeats(agent, connected_agent, monkeypatch, receive_until):
    monkeypatch.setattr(AgentConsumer, "recheck_s", 0.1)
    communicator, _ = await connected_agent(agent)
    await asyncio.sleep(0.6)  # several re-checks pass
    await communicator.send_json_to({"type": "ping"})
    frames = await receive_until(communicator, "pong", within=5)  # a close would fail here
    assert frames[-1] == {"type": "pong"}
    await communicator.disconnect()
