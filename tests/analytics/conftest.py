"""Hand-built conversations for the outcome definitions: a visitor, the bot's
answers through the real services, agents, ratings and thumbs."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from chatbot.agents import presence
from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.services import BotPrediction
from chatbot.nlu.models import ModelVersion

LATER = timedelta(hours=25)  # past the default idle window of 24 h


class Chat:
    """One visitor's conversation, driven through the product's own services."""

    def __init__(self, version: ModelVersion | None = None) -> None:
        self.token, conversation = services.start_session(page_url="https://shop.example/")
        self.id = conversation.pk
        self.version = version

    def ask(self, text: str = "where is my order") -> Message:
        message, created = services.record_visitor_message(self.id, text, uuid.uuid4())
        assert created
        return message

    def bot_answers(self, message: Message, *, confident: bool = True) -> Message:
        prediction = BotPrediction(
            intent="order_status",
            confidence=0.95 if confident else 0.1,
            out_of_scope=False,
            model_version_id=self.version.pk if self.version else None,
        )
        reply = services.answer_visitor_message(message.pk, prediction)
        assert reply is not None
        return reply

    def resolved_exchange(self) -> Message:
        return self.bot_answers(self.ask())

    @property
    def conversation(self) -> Conversation:
        return Conversation.objects.get(pk=self.id)

    def outcome(self):
        from chatbot.analytics.models import ConversationOutcome

        return ConversationOutcome.objects.filter(pk=self.id).first()


def later() -> timezone.datetime:
    return timezone.now() + LATER


@pytest.fixture
def version(db):
    return ModelVersion.objects.create(status=ModelVersion.Status.READY, model_id="v-test")


@pytest.fixture
def other_version(db):
    return ModelVersion.objects.create(status=ModelVersion.Status.READY, model_id="v-test-2")


@pytest.fixture
def chat(demo_intents, version) -> Chat:
    return Chat(version)


@pytest.fixture
def agent_online(agent):
    presence.connect(agent.pk, "test-agent-tab")
    return agent


@pytest.fixture
def supervisor(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("sue", password="pw-sue", first_name="Sue")
    user.groups.add(supervisors_group())
    return user


def supervisors_group() -> Group:
    # Created by a migration; transactional tests flush it, so make sure it exists.
    from django.contrib.auth.models import Permission

    group, _ = Group.objects.get_or_create(name="Supervisors")
    group.permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="analytics"))
    return group
