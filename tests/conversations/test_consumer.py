"""The visitor's websocket, frame by frame, through the real ASGI application."""

import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from chatbot.asgi import application
from chatbot.conversations.models import Message
from chatbot.nlu.models import Feedback

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


message_count = database_sync_to_async(lambda: Message.objects.count())


async def assert_still_open(communicator) -> None:
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}


# --- Authentication -----------------------------------------------------------


async def test_auth_returns_empty_history_for_new_conversation(visitor, authed):
    communicator, history = await authed(visitor)
    assert history["conversation_id"] == visitor.conversation_id
    assert history["messages"] == []
    assert history["status"] == "bot"
    await communicator.disconnect()


async def test_bad_token_is_refused_with_4401(visitor, connect_chat):
    communicator = await connect_chat()
    await communicator.send_json_to({"type": "auth", "token": "not-a-token", "last_seq": 0})
    frame = await communicator.receive_json_from()
    assert frame["type"] == "error" and frame["code"] == "unauthorized"
    assert (await communicator.receive_output(timeout=2)) == {"type": "websocket.close", "code": 4401}


async def test_token_of_another_conversation_is_refused(visitor, other_visitor, connect_chat):
    communicator = await connect_chat()
    await communicator.send_json_to(
        {"type": "auth", "token": visitor.token, "conversation_id": other_visitor.conversation_id}
    )
    frame = await communicator.receive_json_from()
    assert frame["code"] == "unauthorized"
    assert (await communicator.receive_output(timeout=2))["code"] == 4401


async def test_message_before_auth_is_refused_and_stores_nothing(visitor, connect_chat):
    communicator = await connect_chat()
    await communicator.send_json_to({"type": "user_message", "text": "hi", "client_msg_id": str(uuid.uuid4())})
    assert (await communicator.receive_json_from())["code"] == "unauthorized"
    assert (await communicator.receive_output(timeout=2))["code"] == 4401
    assert await message_count() == 0


@override_settings(WS_AUTH_TIMEOUT_S=0.3)
async def test_no_auth_in_time_closes_with_4401(connect_chat):
    communicator = await connect_chat()
    frame = await communicator.receive_json_from(timeout=3)
    assert frame == {"type": "error", "code": "unauthorized", "message": "No valid auth frame in time."}
    assert (await communicator.receive_output(timeout=2))["code"] == 4401


async def test_foreign_origin_is_refused(visitor):
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


@override_settings(WIDGET_ORIGINS=["https://shop.example"])
async def test_configured_widget_origin_is_accepted():
    # The origin list is read when the application is built, as at server start.
    import importlib

    import chatbot.asgi

    app = importlib.reload(chatbot.asgi).application
    communicator = WebsocketCommunicator(app, "/ws/chat/", headers=[(b"origin", b"https://shop.example")])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


# --- Bad frames never close the socket and never leave a row ------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not json", "invalid_json"),
        ("[1, 2, 3]", "invalid_json"),
        ('{"no_type": 1}', "invalid_json"),
        ('{"type": "launch_rockets"}', "unknown_type"),
        (json.dumps({"type": "user_message", "text": "   ", "client_msg_id": str(uuid.uuid4())}), "empty_text"),
        (json.dumps({"type": "user_message", "client_msg_id": str(uuid.uuid4())}), "empty_text"),
        (json.dumps({"type": "user_message", "text": 42, "client_msg_id": str(uuid.uuid4())}), "empty_text"),
        (json.dumps({"type": "user_message", "text": "x" * 2001, "client_msg_id": str(uuid.uuid4())}), "text_too_long"),
        ('{"type": "user_message", "text": "hi", "client_msg_id": "nope"}', "invalid_client_msg_id"),
        ('{"type": "feedback", "message_id": 999999, "value": "down"}', "unknown_message"),
        ('{"type": "rating", "score": 9}', "invalid_rating"),
        ('{"type": "identify", "email": "not an email"}', "invalid_identity"),
    ],
)
async def test_bad_frame_gets_error_and_leaves_no_row(visitor, frame, code, authed):
    communicator, _ = await authed(visitor)
    await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from()
    assert error["type"] == "error" and error["code"] == code
    await assert_still_open(communicator)
    assert await message_count() == 0
    await communicator.disconnect()


async def test_binary_frame_is_refused_without_closing(visitor, authed):
    communicator, _ = await authed(visitor)
    await communicator.send_to(bytes_data=b"\x00\x01binary")
    assert (await communicator.receive_json_from())["code"] == "invalid_json"
    await assert_still_open(communicator)
    await communicator.disconnect()


async def test_message_of_2000_characters_is_accepted(visitor, authed, send_message):
    communicator, _ = await authed(visitor)
    ack = await send_message(communicator, "y" * 2000)
    assert ack["type"] == "ack"
    await communicator.disconnect()


@override_settings(RATE_LIMIT_MESSAGES=3, RATE_LIMIT_WINDOW_S=60)
async def test_flooding_past_the_rate_limit_is_refused_and_not_stored(visitor, authed, send_message):
    communicator, _ = await authed(visitor)
    for n in range(3):
        assert (await send_message(communicator, f"message {n}"))["type"] == "ack"
        assert (await communicator.receive_json_from())["type"] == "typing"
    client_msg_id = str(uuid.uuid4())
    error = await send_message(communicator, "one too many", client_msg_id)
    assert 1 <= error.pop("retry_after") <= 60
    assert error == {
        "type": "error",
        "code": "rate_limited",
        "message": "Too many messages; wait a few seconds and try again.",
        "client_msg_id": client_msg_id,
        "frame": "user_message",
    }
    assert await message_count() == 3
    await assert_still_open(communicator)
    await communicator.disconnect()


# --- Messages, replies, idempotency and replay -------------------------------


async def test_message_is_stored_before_ack_and_answered_by_the_model(
    visitor, active_model, celery_worker, receive_until, authed, send_message
):
    communicator, _ = await authed(visitor)
    client_msg_id = str(uuid.uuid4())
    ack = await send_message(communicator, "where is my parcel? it has not arrived yet", client_msg_id)
    assert ack["type"] == "ack" and ack["client_msg_id"] == client_msg_id and ack["seq"] == 1
    stored = await database_sync_to_async(Message.objects.get)(pk=ack["message_id"])
    assert stored.sender == "visitor" and str(stored.client_msg_id) == client_msg_id
    assert await communicator.receive_json_from() == {"type": "typing", "sender": "bot", "on": True}
    reply = (await receive_until(communicator, "message"))[-1]
    assert reply["sender"] == "bot" and reply["seq"] == 2
    assert reply["intent"] == "order_status"
    assert 0 < reply["confidence"] <= 1 and reply["text"]
    await communicator.disconnect()


async def test_duplicate_client_msg_id_creates_one_message_and_one_reply(
    visitor, active_model, celery_worker, receive_until, authed, send_message
):
    communicator, _ = await authed(visitor)
    client_msg_id = str(uuid.uuid4())
    first = await send_message(communicator, "hello there", client_msg_id)
    await receive_until(communicator, "message")
    second = await send_message(communicator, "hello there", client_msg_id)
    assert second == first
    # Give a wrongly enqueued second task time to show itself.
    assert await communicator.receive_nothing(timeout=1.5)
    senders = await database_sync_to_async(lambda: list(Message.objects.values_list("sender", flat=True)))()
    assert sorted(senders) == ["bot", "visitor"]
    await communicator.disconnect()


async def test_reconnect_with_last_seq_gets_missed_messages_in_order(
    visitor, active_model, celery_worker, receive_until, authed, send_message
):
    communicator, _ = await authed(visitor)
    await send_message(communicator, "hi")
    await receive_until(communicator, "message")
    await communicator.disconnect()

    # While the visitor is away, two more messages come in (from another tab).
    other, _ = await authed(visitor, last_seq=2)
    await send_message(other, "how long does shipping take to the US?")
    await receive_until(other, "message")
    await other.disconnect()

    again, history = await authed(visitor, last_seq=2)
    assert [m["seq"] for m in history["messages"]] == [3, 4]
    assert [m["sender"] for m in history["messages"]] == ["visitor", "bot"]
    everything = (await authed(visitor, last_seq=0))[1]["messages"]
    assert [m["seq"] for m in everything] == [1, 2, 3, 4]
    await again.disconnect()


async def test_thumbs_down_is_recorded_as_feedback(
    visitor, active_model, celery_worker, receive_until, authed, send_message
):
    communicator, _ = await authed(visitor)
    await send_message(communicator, "hi")
    reply = (await receive_until(communicator, "message"))[-1]
    await communicator.send_json_to({"type": "feedback", "message_id": reply["message_id"], "value": "down"})
    assert (await communicator.receive_json_from())["type"] == "feedback_ack"
    feedback = await database_sync_to_async(lambda: list(Feedback.objects.values_list("source", "message__sender")))()
    assert feedback == [("thumbs_down", "visitor")]
    await communicator.disconnect()


async def test_handoff_request_moves_conversation_to_the_queue(visitor, receive_until, authed):
    communicator, _ = await authed(visitor)
    await communicator.send_json_to({"type": "handoff_request"})
    frames = await receive_until(communicator, "status")
    assert frames[-1] == {"type": "status", "status": "waiting_for_agent", "offline": True}
    await visitor.conversation.arefresh_from_db()
    assert visitor.conversation.status == "waiting_for_agent"
    await communicator.disconnect()


async def test_rating_is_stored(visitor, authed):
    # Someone answered (a rating is asked for only then).
    await database_sync_to_async(Message.objects.create)(
        conversation=visitor.conversation, seq=1, sender="bot", text="Your order ships today.", answer=True
    )
    communicator, _ = await authed(visitor)
    await communicator.send_json_to({"type": "rating", "score": 4})
    assert await communicator.receive_json_from() == {"type": "rating_ack", "score": 4}
    await visitor.conversation.arefresh_from_db()
    assert visitor.conversation.csat == 4
    await communicator.disconnect()


async def test_rating_before_anyone_answered_is_refused(visitor, authed):
    communicator, _ = await authed(visitor)
    await communicator.send_json_to({"type": "rating", "score": 4})
    assert (await communicator.receive_json_from())["code"] == "not_answered"
    await visitor.conversation.arefresh_from_db()
    assert visitor.conversation.csat is None
    await communicator.disconnect()
