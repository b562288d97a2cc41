"""Helpers for the agents' tests: what a visitor says, what the model predicted, who is online."""

import uuid

import pytest
from django.test import Client

from chatbot.agents import presence
from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.services import BotPrediction


def say(visitor, text: str) -> Message:
    message, created = services.record_visitor_message(visitor.conversation.pk, text, uuid.uuid4())
    assert created
    return message


def predicted(intent: str, confidence: float, out_of_scope: bool = False) -> BotPrediction:
    return BotPrediction(intent=intent, confidence=confidence, out_of_scope=out_of_scope, model_version_id=None)


def fresh(visitor) -> Conversation:
    return Conversation.objects.get(pk=visitor.conversation.pk)


@pytest.fixture
def agent_online(agent):
    presence.connect(agent.pk, "test-agent-tab")
    return agent


def login_cookie(user) -> str:
    """A real session cookie for `user`, as the browser would send it."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value
