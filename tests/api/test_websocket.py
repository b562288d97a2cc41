"""A message posted through the API reaches the visitor's websocket live, in the
very frame a dashboard reply produces."""

import json
import urllib.request

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.sync.client import connect

from chatbot.agents import services as agents
from chatbot.asgi import application
from tests.api.conftest import ApiClient, make_token
from tests.conftest import ORIGIN, LiveServer, require_real_services

pytestmark = pytest.mark.django_db(transaction=True)


async def visitor_socket(visitor) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", ORIGIN.encode())])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "auth", "token": visitor.token, "last_seq": 0})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "history"
    return communicator


async def next_message(communicator, sender: str) -> dict:
    while True:
        frame = await communicator.receive_json_from(timeout=10)
        if frame["type"] == "message" and frame["sender"] == sender:
            return frame


@pytest.mark.asyncio
async def test_agent_message_posted_through_the_api_reaches_the_visitor_like_a_dashboard_reply(visitor, agent):
    client = ApiClient(await database_sync_to_async(make_token)(agent, ["write"]))
    socket = await visitor_socket(visitor)
    url = f"/api/v1/conversations/{visitor.conversation_id}"
    response = await database_sync_to_async(client.post)(f"{url}/assign", {})
    assert response.status_code == 200

    response = await database_sync_to_async(client.post)(f"{url}/messages", {"text": "Hello from the CRM"})
    assert response.status_code == 201
    from_api = await next_message(socket, "agent")

    await database_sync_to_async(agents.reply)(visitor.conversation.pk, agent, "Hello from the dashboard")
    from_dashboard = await next_message(socket, "agent")

    assert from_api["text"] == "Hello from the CRM" and from_api["agent_name"] == "Alice"
    assert from_api["message_id"] == response.json()["id"]
    assert set(from_api) == set(from_dashboard)
    assert {k: v for k, v in from_api.items() if k not in ("message_id", "seq", "text", "created_at")} == {
        k: v for k, v in from_dashboard.items() if k not in ("message_id", "seq", "text", "created_at")
    }
    await socket.disconnect()


@pytest.mark.asyncio
async def test_bot_message_and_notes_from_the_api(visitor, agent):
    client = ApiClient(await database_sync_to_async(make_token)(agent, ["write"]))
    socket = await visitor_socket(visitor)
    url = f"/api/v1/conversations/{visitor.conversation_id}"
    await database_sync_to_async(client.post)(f"{url}/notes", {"text": "internal only"})
    await database_sync_to_async(client.post)(f"{url}/messages", {"text": "Shipped today.", "sender": "bot"})
    frame = await next_message(socket, "bot")
    # The note never reached the visitor: the first message frame is the bot's.
    assert frame["text"] == "Shipped today."
    await socket.disconnect()


@pytest.mark.realstack
def test_on_the_real_stack_an_api_message_reaches_a_real_websocket_client(active_model, visitor, agent):
    """The server as a process (uvicorn, PostgreSQL, Redis), a websocket client and plain HTTP."""
    require_real_services()
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    token = make_token(agent, ["write"])
    server = LiveServer(args=["--no-workers"])
    try:
        ws_url = server.url.replace("http://", "ws://") + "/ws/chat/"
        with connect(ws_url, additional_headers={"Origin": ORIGIN}, open_timeout=10) as socket:
            socket.send(json.dumps({"type": "auth", "token": visitor.token, "last_seq": 0}))
            assert json.loads(socket.recv(timeout=10))["type"] == "history"
            for path, body in (("assign", {}), ("messages", {"text": "Live from the API"})):
                request = urllib.request.Request(
                    f"{server.url}/api/v1/conversations/{visitor.conversation_id}/{path}",
                    data=json.dumps(body).encode(),
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    method="POST",
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status in (200, 201)
            while True:
                frame = json.loads(socket.recv(timeout=10))
                if frame["type"] == "message" and frame["sender"] == "agent":
                    break
            assert frame["text"] == "Live from the API" and frame["agent_name"] == "Alice"
    finally:
        server.stop()
