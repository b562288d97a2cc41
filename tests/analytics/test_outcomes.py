"""Each outcome definition of docs/analytics.md on a hand-built conversation."""

from datetime import timedelta

from django.utils import timezone

from chatbot.agents import services as agents
from chatbot.analytics import outcomes
from chatbot.analytics.models import ConversationOutcome, Outcome
from chatbot.analytics.tasks import finalise_outcomes
from chatbot.conversations import services
from chatbot.conversations.models import Message
from tests.analytics.conftest import Chat, later


def test_resolved_by_bot_once_idle_past_the_window(chat, version):
    chat.resolved_exchange()
    assert outcomes.finalise([chat.id]) == 0  # still going on: not final yet
    assert chat.outcome() is None

    assert outcomes.finalise([chat.id], now=later()) == 1
    row = chat.outcome()
    assert (row.outcome, row.final) == (Outcome.RESOLVED_BY_BOT, True)
    assert (row.model_version_id, row.visitor_messages, row.bot_answers, row.fallbacks) == (version.pk, 1, 1, 0)


def test_closed_conversation_is_final_at_once(chat, agent, django_capture_on_commit_callbacks):
    chat.resolved_exchange()
    with django_capture_on_commit_callbacks(execute=True):
        agents.close(chat.id, agent)
    assert (chat.outcome().outcome, chat.outcome().final) == (Outcome.RESOLVED_BY_BOT, True)


def test_thumbs_down_is_not_resolved(chat):
    reply = chat.resolved_exchange()
    services.record_thumbs(chat.conversation, reply.pk, "down")
    outcomes.finalise([chat.id], now=later())
    assert chat.outcome().outcome == Outcome.UNANSWERED
    assert chat.outcome().thumbs_down


def test_thumbs_down_after_counting_recomputes_the_outcome(chat, django_capture_on_commit_callbacks):
    reply = chat.resolved_exchange()
    outcomes.finalise([chat.id], now=later() + timedelta(hours=1))
    assert chat.outcome().outcome == Outcome.RESOLVED_BY_BOT
    # The signal recomputes now; "now" is real time here, so make the conversation idle.
    from chatbot.conversations.models import Conversation

    Conversation.objects.filter(pk=chat.id).update(updated_at=chat.conversation.updated_at - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        services.record_thumbs(chat.conversation, reply.pk, "down")
    assert chat.outcome().outcome == Outcome.UNANSWERED


def test_low_csat_is_not_resolved_even_when_given_after_counting(chat):
    chat.resolved_exchange()
    outcomes.finalise([chat.id], now=later())
    assert chat.outcome().outcome == Outcome.RESOLVED_BY_BOT
    services.record_rating(chat.conversation, 2)  # a plain UPDATE: no signal
    outcomes.finalise_due(now=later())
    assert (chat.outcome().outcome, chat.outcome().csat) == (Outcome.UNANSWERED, 2)


def test_csat_three_still_resolved(chat):
    chat.resolved_exchange()
    services.record_rating(chat.conversation, 3)
    outcomes.finalise([chat.id], now=later())
    assert (chat.outcome().outcome, chat.outcome().csat) == (Outcome.RESOLVED_BY_BOT, 3)


def test_unanswered_when_the_bot_fell_back_and_nobody_followed_up(chat):
    chat.resolved_exchange()
    chat.bot_answers(chat.ask("do you sell gift cards"), confident=False)
    outcomes.finalise([chat.id], now=later())
    row = chat.outcome()
    assert (row.outcome, row.bot_answers, row.fallbacks) == (Outcome.UNANSWERED, 2, 1)


def test_handed_off_with_reason_agent_and_first_response_time(chat, agent_online, django_capture_on_commit_callbacks):
    chat.resolved_exchange()
    services.hand_off(chat.id, "requested")
    handed_at = chat.conversation.waiting_since
    assert (chat.outcome().outcome, chat.outcome().final) == (Outcome.HANDED_OFF, False)
    agents.take_over(chat.id, agent_online)
    reply = agents.reply(chat.id, agent_online, "Hi, let me look.")
    Message.objects.filter(pk=reply.pk).update(created_at=handed_at + timedelta(seconds=90))
    with django_capture_on_commit_callbacks(execute=True):
        agents.close(chat.id, agent_online)
    row = chat.outcome()
    assert (row.outcome, row.final, row.handoff_reason) == (Outcome.HANDED_OFF, True, "requested")
    assert row.first_response_s == 90.0
    assert row.agent_id == agent_online.pk


def test_abandoned_when_the_visitor_left_while_waiting(chat, agent_online):
    chat.resolved_exchange()
    services.hand_off(chat.id, "requested")
    assert not chat.conversation.offline_message
    outcomes.finalise([chat.id], now=later())
    row = chat.outcome()
    assert (row.outcome, row.handoff_reason, row.first_response_s) == (Outcome.ABANDONED, "requested", None)


def test_offline_message_is_handed_off_not_abandoned(chat):
    chat.resolved_exchange()
    services.hand_off(chat.id, "requested")  # nobody online: the visitor leaves an email address
    assert chat.conversation.offline_message
    outcomes.finalise([chat.id], now=later())
    assert chat.outcome().outcome == Outcome.HANDED_OFF


def test_outcome_changes_when_handed_off_after_being_counted_resolved(
    chat, agent_online, django_capture_on_commit_callbacks
):
    chat.resolved_exchange()
    outcomes.finalise([chat.id], now=later())
    assert (chat.outcome().outcome, chat.outcome().final) == (Outcome.RESOLVED_BY_BOT, True)

    chat.ask("actually I need a person")  # the visitor is back: no longer final
    assert chat.outcome().final is False
    services.hand_off(chat.id, "requested")
    assert (chat.outcome().outcome, chat.outcome().final) == (Outcome.HANDED_OFF, False)

    agents.take_over(chat.id, agent_online)
    agents.reply(chat.id, agent_online, "Here I am.")
    with django_capture_on_commit_callbacks(execute=True):
        agents.close(chat.id, agent_online)
    row = chat.outcome()
    assert (row.outcome, row.final, row.handoff_reason) == (Outcome.HANDED_OFF, True, "requested")


def test_handoff_is_remembered_after_a_hand_back_to_the_bot(chat, agent_online):
    chat.resolved_exchange()
    services.hand_off(chat.id, "fallback")
    agents.take_over(chat.id, agent_online)
    agents.reply(chat.id, agent_online, "Sorted.")
    agents.hand_back(chat.id, agent_online)
    assert chat.conversation.handoff_reason == ""  # the conversation forgets it...
    chat.resolved_exchange()
    outcomes.finalise([chat.id], now=later())
    assert (chat.outcome().outcome, chat.outcome().handoff_reason) == (Outcome.HANDED_OFF, "fallback")  # ...we don't


def test_conversation_without_a_visitor_message_is_stored_but_not_counted(demo_intents):
    chat = Chat()
    outcomes.finalise([chat.id], now=later())
    assert chat.outcome().outcome == Outcome.NO_VISITOR_MESSAGE


def test_task_finalises_idle_conversations_once(chat, demo_intents):
    from chatbot.conversations.models import Conversation

    chat.resolved_exchange()
    other = Chat()
    other.bot_answers(other.ask("gift cards?"), confident=False)
    Chat().ask("still typing")  # active: not final
    idle = Conversation.objects.filter(pk__in=[chat.id, other.id])
    idle.update(updated_at=timezone.now() - timedelta(hours=25))
    assert finalise_outcomes() == 2
    assert finalise_outcomes() == 0  # idempotent
    assert ConversationOutcome.objects.filter(final=True).count() == 2
    assert other.outcome().outcome == Outcome.UNANSWERED
