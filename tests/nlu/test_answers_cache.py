"""The intents the bot answers with are kept in each process's memory: a change
by staff (here, or in another process) is answered with at once, and while
nothing changes an answer reads no intent, response or article."""

import pytest
from django.test.utils import CaptureQueriesContext

from chatbot.conversations import services
from chatbot.nlu import answers
from chatbot.nlu.models import Intent, Response

pytestmark = pytest.mark.django_db


def _reply_text(visitor, say, predicted, intent="order_status") -> str:
    message = say(visitor, "where is my order")
    return services.answer_visitor_message(message.pk, predicted(intent, 0.95)).text


def test_an_edited_response_is_answered_with_at_once(visitor, demo_intents, say, predicted):
    Response.objects.filter(intent__name="order_status").exclude(position=0).delete()
    response = Response.objects.get(intent__name="order_status")
    assert _reply_text(visitor, say, predicted) == response.text
    response.text = "Your order is on its way (edited)."
    response.save()
    assert _reply_text(visitor, say, predicted) == "Your order is on its way (edited)."


def test_a_change_made_by_another_process_is_seen_through_the_shared_version(visitor, demo_intents, say, predicted):
    Response.objects.filter(intent__name="order_status").exclude(position=0).delete()
    first = _reply_text(visitor, say, predicted)
    # update() sends no signal: as if another process had changed the row, then the number.
    Response.objects.filter(intent__name="order_status").update(text="Changed elsewhere.")
    assert _reply_text(visitor, say, predicted) == first
    answers._intents.changed()
    assert _reply_text(visitor, say, predicted) == "Changed elsewhere."


def test_while_nothing_changes_an_answer_reads_no_intent(visitor, demo_intents, say, predicted):
    from django.db import connection

    _reply_text(visitor, say, predicted)
    with CaptureQueriesContext(connection) as queries:
        _reply_text(visitor, say, predicted)
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "nlu_intent" not in tables and "nlu_response" not in tables and "knowledge_article" not in tables


def test_an_intent_created_without_a_signal_is_found_on_the_next_answer(visitor, demo_intents, say, predicted):
    assert answers.intent_with_answers("brand_new") is None
    (intent,) = Intent.objects.bulk_create([Intent(name="brand_new")])  # bulk: no post_save
    Response.objects.bulk_create([Response(intent=intent, text="Brand new answer.")])
    assert _reply_text(visitor, say, predicted, intent="brand_new") == "Brand new answer."
