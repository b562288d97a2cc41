"""When the bot hands a conversation to a person, and what the visitor is told."""

import pytest
from django.test import override_settings

from chatbot.agents import presence
from chatbot.conversations import services
from chatbot.conversations.models import Message
from chatbot.nlu.models import Feedback

pytestmark = pytest.mark.django_db


def system_texts(visitor) -> list[str]:
    """The agents' side of a handoff: internal system notes saying why."""
    return list(
        Message.objects.filter(conversation=visitor.conversation, sender="system", internal=True).values_list(
            "text", flat=True
        )
    )


@override_settings(HANDOFF_AFTER_FALLBACKS=2)
def test_two_fallbacks_in_a_row_hand_off_with_a_system_message(
    visitor, demo_intents, agent_online, say, predicted, fresh
):
    first = services.answer_visitor_message(say(visitor, "blorp").pk, predicted("", 0.1, out_of_scope=True))
    assert (first.text, first.quick_replies) == (services.FALLBACK_TEXT, [services.TALK_TO_HUMAN])
    assert fresh(visitor).status == "bot"
    reply = services.answer_visitor_message(say(visitor, "zzz").pk, predicted("returns", 0.2))
    assert reply.text == services.HANDOFF_TEXT
    conversation = fresh(visitor)
    assert conversation.waiting_since is not None
    assert Feedback.objects.filter(source="fallback").count() == 2
    assert (conversation.status, conversation.handoff_reason, conversation.offline_message) == (
        "waiting_for_agent",
        "fallback",
        False,
    )
    assert system_texts(visitor) == ["Handed off to a person: the bot could not answer."]


@override_settings(HANDOFF_AFTER_FALLBACKS=1)
def test_handoff_at_once_when_configured(visitor, demo_intents, agent_online, say, predicted, fresh):
    services.answer_visitor_message(say(visitor, "blorp").pk, predicted("", 0.1, out_of_scope=True))
    assert fresh(visitor).status == "waiting_for_agent"


def test_talk_to_a_human_intent_hands_off(visitor, demo_intents, agent_online, say, predicted, fresh):
    reply = services.answer_visitor_message(say(visitor, "a person please").pk, predicted("human_handoff", 0.9))
    assert reply.text == services.HANDOFF_TEXT
    assert fresh(visitor).handoff_reason == "requested"


def test_handoff_button_hands_off(visitor, agent_online, fresh):
    services.hand_off(visitor.conversation.pk, "requested")
    conversation = fresh(visitor)
    assert conversation.status == "waiting_for_agent" and conversation.waiting_since is not None
    last = conversation.messages.order_by("-seq").first()
    assert (last.sender, last.text) == ("bot", services.HANDOFF_TEXT)


def test_thumbs_down_then_another_message_hands_off(visitor, demo_intents, agent_online, say, predicted, fresh):
    answer = services.answer_visitor_message(say(visitor, "where is my order").pk, predicted("order_status", 0.95))
    services.record_thumbs(fresh(visitor), answer.pk, "down")
    reply = services.answer_visitor_message(say(visitor, "that does not help").pk, predicted("order_status", 0.95))
    assert reply.text == services.HANDOFF_TEXT
    conversation = fresh(visitor)
    assert (conversation.status, conversation.handoff_reason) == ("waiting_for_agent", "thumbs_down")
    assert system_texts(visitor) == ["Handed off to a person: the visitor disliked an answer."]


def test_thumbs_up_then_another_message_does_not_hand_off(visitor, demo_intents, agent_online, say, predicted, fresh):
    answer = services.answer_visitor_message(say(visitor, "where is my order").pk, predicted("order_status", 0.95))
    services.record_thumbs(fresh(visitor), answer.pk, "up")
    services.answer_visitor_message(say(visitor, "and returns?").pk, predicted("returns", 0.95))
    assert fresh(visitor).status == "bot"


def test_thumbs_down_on_an_older_answer_does_not_hand_off(visitor, demo_intents, agent_online, say, predicted, fresh):
    first = services.answer_visitor_message(say(visitor, "where is my order").pk, predicted("order_status", 0.95))
    services.answer_visitor_message(say(visitor, "and returns?").pk, predicted("returns", 0.95))
    services.record_thumbs(fresh(visitor), first.pk, "down")
    services.answer_visitor_message(say(visitor, "thanks").pk, predicted("greeting", 0.95))
    assert fresh(visitor).status == "bot"


def test_no_agent_online_asks_for_email_and_queues_an_offline_message(visitor, demo_intents, say, predicted, fresh):
    assert not presence.any_agent_online()
    reply = services.answer_visitor_message(say(visitor, "a person please").pk, predicted("human_handoff", 0.9))
    assert reply.text == services.NO_AGENT_TEXT
    conversation = fresh(visitor)
    assert conversation.status == "waiting_for_agent" and conversation.offline_message
    assert "No agent was online" in system_texts(visitor)[0]


def test_no_agent_online_on_the_handoff_button(visitor, fresh):
    services.hand_off(visitor.conversation.pk, "requested")
    conversation = fresh(visitor)
    assert conversation.offline_message
    assert conversation.messages.order_by("-seq").first().text == services.NO_AGENT_TEXT


def test_offline_visitor_who_left_an_email_is_thanked(visitor, demo_intents, say, predicted, fresh):
    services.hand_off(visitor.conversation.pk, "requested")
    # Right after the handoff the bot stays quiet...
    assert services.answer_visitor_message(say(visitor, "hello?").pk, predicted("", 0.1, out_of_scope=True)) is None
    services.identify(fresh(visitor), None, "ann@example.com")
    # ...and minutes later reminds the visitor, who has left an email, that they are in the queue.
    Message.objects.filter(conversation=visitor.conversation).update(
        created_at=fresh(visitor).created_at.replace(year=2020)
    )
    thanks = services.answer_visitor_message(say(visitor, "ok").pk, predicted("", 0.1, out_of_scope=True))
    assert (thanks.sender, thanks.text) == ("system", services.OFFLINE_THANKS_TEXT)


def test_an_agent_online_in_any_tab_counts_and_a_stale_one_does_not(visitor, agent, other_agent):
    presence.connect(agent.pk, "tab-1")
    presence.connect(agent.pk, "tab-2")
    presence.disconnect("tab-1")
    assert presence.any_agent_online() and presence.online_agents() == [agent]
    presence.disconnect("tab-2")
    assert not presence.any_agent_online()
    with override_settings(AGENT_PRESENCE_TTL_S=0):
        presence.connect(other_agent.pk, "tab-3")  # its heartbeat is already too old
        assert not presence.any_agent_online()


def test_bot_stays_silent_while_an_agent_holds_the_conversation(visitor, demo_intents, agent, say, predicted):
    from chatbot.agents import services as agents

    agents.take_over(visitor.conversation.pk, agent)
    message = say(visitor, "where is my order")
    assert services.answer_visitor_message(message.pk, predicted("order_status", 0.95)) is None
    message.refresh_from_db()
    assert (message.intent, message.confidence) == ("order_status", 0.95)
    assert not Message.objects.filter(sender="bot").exists()
    assert not Feedback.objects.filter(source="fallback").exists()
