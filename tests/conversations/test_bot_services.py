"""The bot's decisions on a visitor message, given what the model predicted."""

import uuid

import pytest
from django.test import override_settings

from chatbot.conversations import services
from chatbot.conversations.models import Message

pytestmark = pytest.mark.django_db


def test_confident_prediction_answers_with_the_intents_response(visitor, demo_intents, say, predicted):
    message = say(visitor, "where is my order")
    reply = services.answer_visitor_message(message.pk, predicted("order_status", 0.95))
    assert reply.sender == "bot" and reply.reply_to_id == message.pk
    from chatbot.nlu.models import Response

    assert reply.text in set(Response.objects.filter(intent__name="order_status").values_list("text", flat=True))
    message.refresh_from_db()
    assert (message.intent, message.confidence) == ("order_status", 0.95)


def test_answering_twice_creates_one_reply(visitor, demo_intents, say, predicted):
    message = say(visitor, "hi")
    assert services.answer_visitor_message(message.pk, predicted("greeting", 0.9)) is not None
    assert services.answer_visitor_message(message.pk, predicted("greeting", 0.9)) is None
    assert Message.objects.filter(sender="bot").count() == 1


@override_settings(HANDOFF_AFTER_FALLBACKS=2)
def test_a_confident_answer_resets_the_fallback_streak(visitor, demo_intents, say, predicted, fresh):
    services.answer_visitor_message(say(visitor, "blorp").pk, predicted("", 0.1, out_of_scope=True))
    services.answer_visitor_message(say(visitor, "hi").pk, predicted("greeting", 0.9))
    services.answer_visitor_message(say(visitor, "blorp again").pk, predicted("", 0.1, out_of_scope=True))
    assert fresh(visitor).status == "bot"


def test_seq_increases_by_one_across_senders(visitor, demo_intents, say, predicted):
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
def test_simultaneous_messages_are_all_stored_and_answered(new_visitor, demo_intents, predicted):
    """Several worker threads writing at once (SQLite once failed with 'database is locked')."""
    import threading

    from django.db import connection

    visitors = [new_visitor() for _ in range(4)]
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
