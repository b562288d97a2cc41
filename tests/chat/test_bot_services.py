"""The bot's decisions on a visitor message, given what the model predicted."""

import uuid

import pytest
from django.test import override_settings

from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.services import BotPrediction
from chatbot.nlu.models import Feedback

pytestmark = pytest.mark.django_db


def say(visitor, text: str) -> Message:
    message, created = services.record_visitor_message(visitor.conversation.pk, text, uuid.uuid4())
    assert created
    return message


def predicted(intent: str, confidence: float, out_of_scope: bool = False) -> BotPrediction:
    return BotPrediction(intent=intent, confidence=confidence, out_of_scope=out_of_scope, model_version_id=None)


@pytest.fixture
def agent_online(agent):
    """A dashboard tab is open: handoffs say a person will reply (not "leave your email")."""
    from chatbot.agents import presence

    presence.connect(agent.pk, "test-agent-tab")


def status_of(visitor) -> str:
    return Conversation.objects.get(pk=visitor.conversation.pk).status


def test_confident_prediction_answers_with_the_intents_response(visitor, demo_intents):
    message = say(visitor, "where is my order")
    reply = services.answer_visitor_message(message.pk, predicted("order_status", 0.95))
    assert reply.sender == "bot" and reply.reply_to_id == message.pk
    from chatbot.nlu.models import Response

    assert reply.text in set(Response.objects.filter(intent__name="order_status").values_list("text", flat=True))
    message.refresh_from_db()
    assert (message.intent, message.confidence) == ("order_status", 0.95)


def test_answering_twice_creates_one_reply(visitor, demo_intents):
    message = say(visitor, "hi")
    assert services.answer_visitor_message(message.pk, predicted("greeting", 0.9)) is not None
    assert services.answer_visitor_message(message.pk, predicted("greeting", 0.9)) is None
    assert Message.objects.filter(sender="bot").count() == 1


@override_settings(INTENT_CONFIDENCE_THRESHOLD=0.6, HANDOFF_AFTER_FALLBACKS=2)
def test_low_confidence_gets_fallback_then_handoff_after_two_in_a_row(visitor, demo_intents, agent_online):
    first = services.answer_visitor_message(say(visitor, "blorp").pk, predicted("returns", 0.3))
    assert first.text == services.FALLBACK_TEXT and first.quick_replies == [services.TALK_TO_HUMAN]
    assert status_of(visitor) == "bot"
    second = services.answer_visitor_message(say(visitor, "zzz").pk, predicted("", 0.9, out_of_scope=True))
    assert second.text == services.HANDOFF_TEXT
    conversation = Conversation.objects.get(pk=visitor.conversation.pk)
    assert conversation.status == "waiting_for_agent" and conversation.handoff_reason == "fallback"
    assert conversation.waiting_since is not None
    assert Message.objects.filter(sender="system").count() == 1
    assert Feedback.objects.filter(source="fallback").count() == 2


@override_settings(HANDOFF_AFTER_FALLBACKS=2)
def test_a_confident_answer_resets_the_fallback_streak(visitor, demo_intents):
    services.answer_visitor_message(say(visitor, "blorp").pk, predicted("", 0.1, out_of_scope=True))
    services.answer_visitor_message(say(visitor, "hi").pk, predicted("greeting", 0.9))
    services.answer_visitor_message(say(visitor, "blorp again").pk, predicted("", 0.1, out_of_scope=True))
    assert status_of(visitor) == "bot"


@override_settings(HANDOFF_AFTER_FALLBACKS=1)
def test_handoff_at_once_when_configured(visitor, demo_intents):
    services.answer_visitor_message(say(visitor, "blorp").pk, predicted("", 0.1, out_of_scope=True))
    assert status_of(visitor) == "waiting_for_agent"


def test_human_handoff_intent_hands_off_at_once(visitor, demo_intents, agent_online):
    reply = services.answer_visitor_message(say(visitor, "a real person please").pk, predicted("human_handoff", 0.9))
    assert reply.text == services.HANDOFF_TEXT
    conversation = Conversation.objects.get(pk=visitor.conversation.pk)
    assert (conversation.status, conversation.handoff_reason) == ("waiting_for_agent", "requested")


def test_bot_stays_silent_while_an_agent_holds_the_conversation(visitor, demo_intents):
    Conversation.objects.filter(pk=visitor.conversation.pk).update(status="with_agent")
    message = say(visitor, "where is my order")
    assert services.answer_visitor_message(message.pk, predicted("order_status", 0.95)) is None
    assert not Message.objects.filter(sender="bot").exists()
    message.refresh_from_db()
    assert message.intent == "order_status"  # still predicted and stored for the agent


def test_seq_increases_by_one_across_senders(visitor, demo_intents):
    services.answer_visitor_message(say(visitor, "hi").pk, predicted("greeting", 0.9))
    services.answer_visitor_message(say(visitor, "thanks").pk, predicted("thanks", 0.9))
    assert list(Message.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4]


def test_session_token_is_stored_only_as_a_hash(visitor):
    from chatbot.conversations.models import Visitor

    stored = Visitor.objects.get()
    assert visitor.token not in stored.token_hash and len(stored.token_hash) == 64
    assert services.authenticate(visitor.token).pk == visitor.conversation.pk
    assert services.authenticate(visitor.token[:-1] + "x") is None


@pytest.mark.django_db(transaction=True)
def test_simultaneous_messages_are_all_stored_and_answered(demo_intents):
    """Several worker threads writing at once (SQLite once failed with 'database is locked')."""
    import threading

    from django.db import connection

    from tests.conftest import VisitorSession

    visitors = [VisitorSession() for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def chat(visitor, text: str) -> None:
        try:
            barrier.wait(timeout=10)
            message, _ = services.record_visitor_message(visitor.conversation.pk, text, uuid.uuid4())
            services.answer_visitor_message(message.pk, predicted("greeting", 0.9))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=chat, args=(v, t)) for v in visitors for t in ("hi", "hello")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Message.objects.filter(sender="visitor").count() == 8
    assert Message.objects.filter(sender="bot").count() == 8
    for visitor in visitors:
        seqs = list(Message.objects.filter(conversation=visitor.conversation).values_list("seq", flat=True))
        assert sorted(seqs) == [1, 2, 3, 4]
