"""The suggest task's frame reaches agents who opened the conversation, through the real ASGI app."""

import pytest
from channels.db import database_sync_to_async

from chatbot.agents import services as agents
from chatbot.conversations.models import Message
from chatbot.replies.tasks import suggest_replies
from tests.replies.conftest import TOY, add

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_suggestions_reach_the_agent_who_opened_the_conversation(
    agent, visitor, active_retrieval, receive_until, connected_agent
):
    dashboard, _ = await connected_agent(agent)
    await dashboard.send_json_to({"type": "open", "conversation_id": visitor.conversation_id})
    await receive_until(dashboard, "opened")
    await database_sync_to_async(agents.take_over)(visitor.conversation.pk, agent)
    message = await database_sync_to_async(add)(visitor.conversation, Message.Sender.VISITOR, "i want a refund")
    await database_sync_to_async(suggest_replies)(message.pk)
    frame = (await receive_until(dashboard, "suggestions"))[-1]
    assert frame["conversation_id"] == visitor.conversation_id and frame["message_id"] == message.pk
    assert frame["version_id"] == active_retrieval.pk and frame["event_id"]
    assert frame["suggestions"][0]["text"] == TOY["i want a refund"]
    assert set(frame["suggestions"][0]) == {"text", "score"}
    await dashboard.disconnect()
