"""A lost live push is not a permanent gap: the client asks for what follows the
last seq it has everything up to (`resume`), and the widget does so on its own."""

import uuid

import pytest


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_resume_sends_every_message_after_the_given_seq(
    visitor, active_model, celery_worker, authed, send_message, receive_until
):
    communicator, _ = await authed(visitor)
    await send_message(communicator, "hello there")
    await receive_until(communicator, "message")
    await send_message(communicator, "where is my order?", str(uuid.uuid4()))
    await receive_until(communicator, "message")

    await communicator.send_json_to({"type": "resume", "after_seq": 1})
    history = await communicator.receive_json_from(timeout=5)
    assert history["type"] == "history" and history["status"] == "bot"
    assert [(m["seq"], m["sender"]) for m in history["messages"]] == [(2, "bot"), (3, "visitor"), (4, "bot")]

    await communicator.send_json_to({"type": "resume", "after_seq": "1"})
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "invalid_after_seq"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_resume_after_a_handoff_reports_the_conversation_as_it_is_now(visitor, authed, receive_until):
    """The agents' internal note of a handoff takes a seq the visitor never receives, so the
    widget asks to resume at once: the history must say the request waits offline, or the
    widget hides its email field."""
    from asgiref.sync import sync_to_async

    from chatbot.conversations import services

    communicator, history = await authed(visitor)
    assert history["status"] == "bot" and history["offline"] is False
    await sync_to_async(services.hand_off)(visitor.conversation.pk, "requested")  # nobody online: offline
    await receive_until(communicator, "status")
    await communicator.send_json_to({"type": "resume", "after_seq": 0})
    history = await receive_until(communicator, "history")
    assert history[-1]["status"] == "waiting_for_agent"
    assert history[-1]["offline"] is True
    await communicator.disconnect()
