"""Issue 14's defects: what a visitor reads and what the team gets when the bot hands
a conversation to a person. Each test failed before its fix."""

import pytest
from django.core import mail
from django.test import override_settings

from chatbot.agents import services as agents
from chatbot.conversations import services
from chatbot.conversations.models import Message, Visitor
from chatbot.conversations.services import ProtocolError

pytestmark = pytest.mark.django_db


def visitor_sees(visitor) -> list[dict]:
    """Every frame the visitor's widget gets on (re)connecting."""
    return services.messages_after(visitor.conversation, 0)


# --- 1. Customer wording; the reason stays agent-side ---------------------------


def test_the_visitor_reads_customer_wording_and_never_the_handoff_reason(visitor, demo_intents, say, predicted, fresh):
    answer = services.answer_visitor_message(say(visitor, "where is my order").pk, predicted("order_status", 0.95))
    services.record_thumbs(fresh(visitor), answer.pk, "down")
    services.answer_visitor_message(say(visitor, "I want to talk to a person").pk, predicted("human_handoff", 0.9))
    texts = " ".join(frame["text"] for frame in visitor_sees(visitor))
    assert "Handed off" not in texts and "disliked" not in texts and "asked for a person" not in texts
    assert "No agent is online" not in texts
    assert "You're in the queue" in texts and "usually replies within" in texts
    # The agents still see why.
    notes = Message.objects.filter(conversation=visitor.conversation, sender="system", internal=True)
    assert [note.text for note in notes] == [
        "Handed off to a person: the visitor asked for a person. No agent was online; waiting as an offline message."
    ]


@override_settings(EXPECTED_REPLY_TEXT="2 hours")
def test_the_queue_line_says_the_configured_reply_time(visitor, agent_online):
    services.hand_off(visitor.conversation.pk, "requested")
    assert services.QUEUE_TEXT.format(expected="2 hours") in [f["text"] for f in visitor_sees(visitor)]


@pytest.mark.parametrize(
    "seconds, said",
    [(60, "a few minutes"), (20 * 60, "20 minutes"), (3600, "an hour"), (2 * 3600, "2 hours"), (3 * 86400, "3 days")],
)
def test_expected_reply_time_reads_like_a_person_wrote_it(seconds, said):
    assert services.describe_wait(seconds) == said


# --- 2. An explicit request wins over the thumbs-down rule ------------------------


def test_an_explicit_request_after_a_thumbs_down_is_recorded_as_a_request(
    visitor, demo_intents, agent_online, say, predicted, fresh
):
    answer = services.answer_visitor_message(say(visitor, "where is my order").pk, predicted("order_status", 0.95))
    services.record_thumbs(fresh(visitor), answer.pk, "down")
    services.answer_visitor_message(say(visitor, "I want to talk to a person").pk, predicted("human_handoff", 0.9))
    assert fresh(visitor).handoff_reason == "requested"


# --- 3. The offline email is stored, confirmed, shown and sent to the team ----------


def test_an_email_in_an_offline_visitors_message_is_stored_confirmed_and_sent_to_the_team(
    visitor, demo_intents, agent, say, predicted, fresh, client, django_capture_on_commit_callbacks
):
    agent.email = "alice@support.example"
    agent.save()
    services.hand_off(visitor.conversation.pk, "requested")
    assert fresh(visitor).offline_message
    with django_capture_on_commit_callbacks(execute=True):
        message = say(visitor, "sure, it's ada@example.com.")
        reply = services.answer_visitor_message(message.pk, predicted("contact_info", 0.95))
    assert Visitor.objects.get().email == "ada@example.com"
    assert reply.text == services.EMAIL_SAVED_TEXT.format(email="ada@example.com")
    assert reply.text in [frame["text"] for frame in visitor_sees(visitor)]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@support.example"]
    assert "ada@example.com" in mail.outbox[0].body and "sure, it's ada@example.com." in mail.outbox[0].body
    client.force_login(agent)
    page = client.get(f"/agent/c/{visitor.conversation.pk}/").content.decode()
    assert "ada@example.com" in page


def test_the_widgets_email_field_on_an_offline_request_is_confirmed_and_sent(
    visitor, agent, fresh, django_capture_on_commit_callbacks
):
    services.hand_off(visitor.conversation.pk, "requested")
    with override_settings(SUPPORT_TEAM_EMAILS=["team@example.com"]), django_capture_on_commit_callbacks(execute=True):
        services.identify(fresh(visitor), None, "ada@example.com")
    assert Visitor.objects.get().email == "ada@example.com"
    assert [m.to for m in mail.outbox] == [["team@example.com"]]
    assert visitor_sees(visitor)[-1]["text"] == services.EMAIL_SAVED_TEXT.format(email="ada@example.com")


@pytest.mark.parametrize("text", ["my email is ada@", "write to @example.com", "a@b"])
def test_no_valid_email_no_change(text):
    assert services.find_email(text) == ""


# --- 4. The bot stays quiet while the visitor waits -----------------------------------


def test_while_waiting_the_bot_neither_greets_nor_offers_a_person(
    visitor, demo_intents, agent_online, say, predicted, fresh
):
    services.hand_off(visitor.conversation.pk, "requested")
    before = fresh(visitor).last_seq
    assert services.answer_visitor_message(say(visitor, "hello? anyone there?").pk, predicted("greeting", 0.95)) is None
    assert fresh(visitor).last_seq == before + 1  # the visitor's message, nothing else
    assert not Message.objects.filter(conversation=visitor.conversation, seq__gt=before, sender="bot").exists()


@override_settings(QUEUE_REMINDER_INTERVAL_S=60)
def test_a_waiting_visitor_gets_one_short_queue_line_at_most_every_few_minutes(
    visitor, demo_intents, agent_online, say, predicted, fresh
):
    services.hand_off(visitor.conversation.pk, "requested")
    # Minutes later...
    Message.objects.filter(conversation=visitor.conversation).update(
        created_at=fresh(visitor).created_at.replace(year=2020)
    )
    line = services.answer_visitor_message(say(visitor, "hello?").pk, predicted("greeting", 0.95))
    assert (line.sender, line.text, line.quick_replies) == ("system", services.WAITING_TEXT, [])
    assert services.answer_visitor_message(say(visitor, "hello??").pk, predicted("greeting", 0.95)) is None


# --- 5. No rating before anyone answered ------------------------------------------------


def test_a_waiting_visitor_who_was_never_answered_cannot_rate(visitor, fresh):
    services.hand_off(visitor.conversation.pk, "requested")
    with pytest.raises(ProtocolError) as refused:
        services.record_rating(fresh(visitor), 5)
    assert refused.value.code == "not_answered"
    assert fresh(visitor).csat is None


def test_a_visitor_may_rate_once_an_agent_replied(visitor, agent, fresh):
    services.hand_off(visitor.conversation.pk, "requested")
    agents.take_over(visitor.conversation.pk, agent)
    agents.reply(visitor.conversation.pk, agent, "Hello, I'm Alice.")
    services.record_rating(fresh(visitor), 4)
    assert fresh(visitor).csat == 4


def test_a_bot_answer_is_rateable_and_marked_for_thumbs(visitor, demo_intents, say, predicted, fresh):
    answer = services.answer_visitor_message(say(visitor, "where is my order").pk, predicted("order_status", 0.95))
    assert services.message_frame(answer)["answer"] is True
    services.record_rating(fresh(visitor), 5)
    assert fresh(visitor).csat == 5


# --- 8. No stale "Offline message" tag -------------------------------------------------------


def test_taking_over_an_offline_message_clears_its_tag(visitor, agent, fresh, client):
    services.hand_off(visitor.conversation.pk, "requested")
    assert fresh(visitor).offline_message
    agents.take_over(visitor.conversation.pk, agent)
    assert not fresh(visitor).offline_message
    client.force_login(agent)
    assert "Offline message" not in client.get("/agent/queue/").content.decode()


# --- Business hours ----------------------------------------------------------------------


def test_business_hours_say_when_the_team_is_in():
    import datetime as dt

    from chatbot.conversations.models import BusinessHours

    hours = BusinessHours(
        enabled=True, timezone="Europe/Berlin", open_days="0,1,2,3,4", opens_at="09:00", closes_at="17:00"
    )
    hours.holidays = "2026-12-25"
    utc = dt.UTC
    assert hours.is_open(dt.datetime(2026, 12, 1, 9, 30, tzinfo=utc))  # Tuesday 10:30 in Berlin
    assert not hours.is_open(dt.datetime(2026, 12, 1, 16, 30, tzinfo=utc))  # 17:30 in Berlin
    assert not hours.is_open(dt.datetime(2026, 12, 5, 10, 0, tzinfo=utc))  # a Saturday
    assert not hours.is_open(dt.datetime(2026, 12, 25, 10, 0, tzinfo=utc))  # a holiday
    assert BusinessHours(enabled=False).is_open(dt.datetime(2026, 12, 5, 3, 0, tzinfo=utc))


def test_a_bad_time_zone_or_holiday_is_refused_in_the_admin_form():
    from django.core.exceptions import ValidationError

    from chatbot.conversations.models import BusinessHours

    with pytest.raises(ValidationError):
        BusinessHours(timezone="Mars/Olympus").clean()
    with pytest.raises(ValidationError):
        BusinessHours(holidays="christmas").clean()


def test_the_configured_reply_time_is_what_the_widget_is_told():
    from chatbot.conversations.models import BusinessHours

    BusinessHours.objects.create(reply_time_text="2 hours")
    assert services.availability() == {"open": True, "replies_in": "2 hours"}
    assert services.expected_reply_time() == "2 hours"


def test_a_connecting_widget_costs_no_query_for_the_teams_availability(django_assert_num_queries):
    """Every widget that connects is told the hours and the reply time: read once, then
    from memory and the cache until staff change the hours."""
    from chatbot.conversations.models import BusinessHours

    services.availability()
    with django_assert_num_queries(0):
        assert services.availability() == {"open": True, "replies_in": "a few hours"}
    hours = BusinessHours.objects.create(reply_time_text="2 hours")
    assert services.availability()["replies_in"] == "2 hours"  # a change is seen at once
    hours.enabled, hours.open_days = True, ""
    hours.save()
    assert services.availability() == {"open": False, "replies_in": "2 hours"}


def test_the_reply_time_is_measured_from_the_last_two_weeks(visitor, agent):
    from datetime import timedelta

    from django.utils import timezone

    services.hand_off(visitor.conversation.pk, "requested")
    agents.take_over(visitor.conversation.pk, agent)
    agents.reply(visitor.conversation.pk, agent, "Hello!")
    visitor.conversation.__class__.objects.update(waiting_since=timezone.now() - timedelta(hours=2))
    assert services.expected_reply_time() == "2 hours"
    visitor.conversation.__class__.objects.update(waiting_since=timezone.now() - timedelta(days=20))
    assert services.expected_reply_time() == "a few hours"  # nothing in the window
