"""Database and Redis faults reach the visitor as an `unavailable` error frame,
never as a dropped socket; the socket rejoins its conversation once Redis is
back (even empty); catch-up resends do not count against the rate limit."""

import asyncio
import uuid

import pytest
import redis
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import OperationalError, transaction

from chatbot import realtime
from chatbot.asgi import application
from chatbot.conversations import services
from chatbot.conversations.models import Message
from tests.conftest import ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)


def test_resends_of_a_message_that_passed_the_rate_limit_are_not_counted_again(visitor, monkeypatch, settings):
    settings.RATE_LIMIT_MESSAGES, settings.RATE_LIMIT_WINDOW_S = 2, 60
    conversation = visitor.conversation
    ids = [uuid.uuid4(), uuid.uuid4()]
    from chatbot.conversations.services import messages

    real_record = messages.record_visitor_message

    def database_restarting(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(messages, "record_visitor_message", database_restarting)
    for _ in range(3):  # the client resends both after every reconnect
        for client_msg_id in ids:
            with pytest.raises(OperationalError):
                services.receive_visitor_message(conversation.pk, conversation.visitor_id, "hi", client_msg_id)
    monkeypatch.setattr(messages, "record_visitor_message", real_record)
    for client_msg_id in ids:
        _, created, _ = services.receive_visitor_message(conversation.pk, conversation.visitor_id, "hi", client_msg_id)
        assert created
    # The limit still holds for new messages.
    with pytest.raises(services.ProtocolError):
        services.receive_visitor_message(conversation.pk, conversation.visitor_id, "hi", uuid.uuid4())


@pytest.mark.asyncio
async def test_a_redis_fault_while_storing_a_message_is_an_error_frame_not_a_closed_socket(
    visitor, monkeypatch, authed
):
    def redis_down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    communicator, _ = await authed(visitor)
    monkeypatch.setattr(services, "receive_visitor_message", redis_down)
    client_msg_id = str(uuid.uuid4())
    await communicator.send_json_to({"type": "user_message", "text": "hello", "client_msg_id": client_msg_id})
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "unavailable" and error["client_msg_id"] == client_msg_id
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_a_database_fault_during_auth_says_unavailable_and_closes_with_try_again_later(visitor, monkeypatch):
    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "authenticate", database_down)
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", ORIGIN.encode())])
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "auth", "token": visitor.token, "last_seq": 0})
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "unavailable"
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 1013}
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_socket_survives_redis_restarting_empty_and_rejoins_its_conversation(
    visitor, redis_server, settings, authed
):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatbot.ops.channel_layer.PooledRedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis_server.url, "socket_timeout": 30, "health_check_interval": 10}],
                "expiry": 60,
            },
        }
    }
    communicator, _ = await authed(visitor)

    def a_bot_message():
        with transaction.atomic():  # lock_conversation is a SELECT ... FOR UPDATE
            return services.append_message(services.lock_conversation(visitor.conversation.pk), sender="bot", text="hi")

    message = await asyncio.to_thread(a_bot_message)
    group = realtime.conversation_group(visitor.conversation.pk)

    await asyncio.to_thread(redis_server.kill)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(redis_server.start)  # back, and empty: the group is gone

    # The consumer rejoins and sends what it may have missed, on the same socket.
    catch_up = await communicator.receive_json_from(timeout=20)
    assert catch_up["type"] == "history"
    assert [m["seq"] for m in catch_up["messages"]] == [message.seq]
    await get_channel_layer().group_send(
        group, services.message_event(await asyncio.to_thread(Message.objects.get, pk=message.pk))
    )
    live = await communicator.receive_json_from(timeout=10)
    assert live["type"] == "message" and live["seq"] == message.seq
    await communicator.disconnect()
