"""Which changes become which events, recorded in the transaction that made the change."""

import uuid

import pytest
from django.db import transaction

from chatbot.agents import presence
from chatbot.agents import services as agents
from chatbot.conversations import services as chat
from chatbot.conversations.models import Message
from chatbot.nlu import services as nlu
from chatbot.nlu.models import ModelVersion
from chatbot.webhooks.models import Delivery, Event, EventType, Subscription
from tests.conftest import VisitorSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def listening(db):
    return Subscription.objects.create(name="all", url="https://hooks.example/x", events=[t.value for t in EventType])


def types() -> list[str]:
    return list(Event.objects.order_by("created_at", "type").values_list("type", flat=True))


def test_nothing_is_recorded_when_nobody_listens(visitor):
    chat.record_visitor_message(visitor.conversation.pk, "hi", uuid.uuid4())
    assert not Event.objects.exists()


def test_a_conversation_from_start_to_close(listening, agent):
    presence.connect(agent.pk, "test-agent-tab")
    visitor = VisitorSession()
    chat.record_visitor_message(visitor.conversation.pk, "where is my order", uuid.uuid4())
    chat.hand_off(visitor.conversation.pk, "requested")
    agents.take_over(visitor.conversation.pk, agent)
    agents.reply(visitor.conversation.pk, agent, "Let me check")
    agents.add_note(visitor.conversation.pk, agent, "order NW-123456")
    agents.close(visitor.conversation.pk, agent)
    events = list(Event.objects.order_by("created_at"))
    assert [e.type for e in events] == [
        "conversation.created",
        "message.created",  # visitor
        "conversation.handed_off",
        "message.created",  # the bot's handoff text
        "conversation.assigned",
        "message.created",  # agent reply
        "message.created",  # internal note
        "conversation.closed",
    ]
    senders = [
        (e.payload["message"]["sender"], e.payload["message"]["internal"])
        for e in events
        if e.type == "message.created"
    ]
    assert senders == [("visitor", False), ("bot", False), ("agent", False), ("agent", True)]
    assigned = next(e for e in events if e.type == "conversation.assigned")
    assert assigned.payload["conversation"]["assigned_agent_id"] == agent.pk
    assert Delivery.objects.filter(subscription=listening).count() == len(events)


def test_only_the_chosen_events_are_recorded(db, visitor):
    Subscription.objects.create(name="csat", url="https://hooks.example/x", events=["csat.received"])
    chat.record_visitor_message(visitor.conversation.pk, "hi", uuid.uuid4())
    with transaction.atomic():  # the bot answered: only an answered conversation is rated
        conversation = chat.lock_conversation(visitor.conversation.pk)
        chat.append_message(conversation, sender=Message.Sender.BOT, text="Hello!", answer=True)
    chat.record_rating(visitor.conversation, 4)
    assert types() == ["csat.received"]
    assert Event.objects.get().payload == {"conversation_id": str(visitor.conversation.pk), "score": 4}


def test_a_rolled_back_change_leaves_no_event(listening, visitor, agent):
    with pytest.raises(agents.AgentActionError):
        agents.reply(visitor.conversation.pk, agent, "not mine")  # refused inside the transaction
    assert "message.created" not in types()


def test_model_version_activated(listening, demo_model_dir, admin):
    version = ModelVersion.objects.create(status=ModelVersion.Status.READY, artifact_dir=str(demo_model_dir))
    nlu.activate_model_version(version.pk, admin)
    event = Event.objects.get(type="model_version.activated")
    assert event.payload["model_version"]["id"] == version.pk and event.payload["model_version"]["is_active"]


def test_training_failed(listening, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    version = nlu.request_training(mode="fast")
    nlu.train_version(version.pk)  # no training data: the run fails
    event = Event.objects.get(type="training.failed")
    assert event.payload["model_version"]["status"] == "failed" and event.payload["model_version"]["error"]
