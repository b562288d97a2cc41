"""Helpers for the reply-suggestion tests: a conversation an agent handled, and a tiny reply model."""

from pathlib import Path

import pytest
from django.db import transaction

from chatbot.agents import services as agents
from chatbot.conversations import services as chat
from chatbot.conversations.models import Message
from chatbot.replies import serving
from chatbot.replies.models import ReplyModelVersion

TOY = {
    "where is my order": "Let me check the tracking for you.",
    "i want a refund": "I can start a refund now.",
    "how do i reset my password": "Use the reset link on the login page.",
    "do you ship abroad": "Yes, we ship to most countries.",
}


def add(conversation, sender: str, text: str, **fields) -> Message:
    with transaction.atomic():
        locked = chat.lock_conversation(conversation.pk)
        return chat.append_message(locked, sender=sender, text=text, **fields)


@pytest.fixture
def handled(visitor, agent):
    """Bot, visitor, an agent's reply, an internal note and another reply, with PII in it."""
    conversation = visitor.conversation
    add(conversation, Message.Sender.VISITOR, "hi, my email is jo@example.com")
    add(conversation, Message.Sender.BOT, "Hello! How can I help?")
    add(conversation, Message.Sender.VISITOR, "where is my order NW-123456")
    agents.take_over(conversation.pk, agent)  # a system line
    agents.reply(conversation.pk, agent, "Let me check NW-123456 for you.")
    agents.add_note(conversation.pk, agent, "internal: customer is angry")
    add(conversation, Message.Sender.VISITOR, "thanks, call me at +44 20 7946 0958")
    agents.reply(conversation.pk, agent, "It ships tomorrow.")
    return conversation


@pytest.fixture(scope="session")
def retrieval_dir(tmp_path_factory) -> Path:
    from inference.replies import ReplyPair, ReplyTrainConfig, Turn, train_reply_model

    pairs = [ReplyPair(context=(Turn("customer", c),), reply=r) for c, r in TOY.items()]
    out = tmp_path_factory.mktemp("replies") / "retrieval"
    return train_reply_model(pairs, out, ReplyTrainConfig(kind="retrieval"))


@pytest.fixture
def active_retrieval(db, retrieval_dir):
    serving.forget()
    yield ReplyModelVersion.objects.create(
        kind="retrieval", status=ReplyModelVersion.Status.READY, artifact_dir=str(retrieval_dir), is_active=True
    )
    serving.forget()


@pytest.fixture
def damaged_dir(tmp_path, retrieval_dir) -> Path:
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(retrieval_dir, copy)
    weights = copy / "embeddings.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    return copy
