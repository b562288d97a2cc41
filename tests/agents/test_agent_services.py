"""What agents do to a conversation, and who may do it."""

import threading

import pytest
from django.db import connection

from chatbot.agents import services as agents
from chatbot.agents.services import AgentActionError
from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message
from chatbot.nlu.models import Feedback


def last_system_text(visitor) -> str:
    return visitor.conversation.messages.filter(sender="system").order_by("-seq").first().text


@pytest.mark.django_db
class TestChangingHands:
    def test_take_over_from_the_queue_assigns_to_me(self, visitor, agent, fresh):
        services.hand_off(visitor.conversation.pk, "requested")
        agents.take_over(visitor.conversation.pk, agent)
        conversation = fresh(visitor)
        assert (conversation.status, conversation.assigned_agent) == ("with_agent", agent)
        assert last_system_text(visitor) == "Alice joined the conversation."

    def test_an_agent_can_take_over_from_the_bot(self, visitor, agent, fresh):
        agents.take_over(visitor.conversation.pk, agent)
        conversation = fresh(visitor)
        assert (conversation.status, conversation.handoff_reason) == ("with_agent", "agent")

    def test_taking_a_conversation_someone_has_is_refused_with_their_name(self, visitor, agent, other_agent, fresh):
        agents.take_over(visitor.conversation.pk, agent)
        with pytest.raises(AgentActionError) as refused:
            agents.take_over(visitor.conversation.pk, other_agent)
        assert refused.value.code == "taken" and "Alice" in refused.value.message
        assert fresh(visitor).assigned_agent == agent

    def test_hand_back_returns_the_conversation_to_the_bot(self, visitor, demo_intents, agent, say, predicted, fresh):
        services.hand_off(visitor.conversation.pk, "fallback")
        agents.take_over(visitor.conversation.pk, agent)
        Conversation.objects.filter(pk=visitor.conversation.pk).update(fallback_streak=3)
        agents.hand_back(visitor.conversation.pk, agent)
        conversation = fresh(visitor)
        assert (conversation.status, conversation.assigned_agent, conversation.fallback_streak) == ("bot", None, 0)
        assert last_system_text(visitor) == "Alice handed the conversation back to the bot."
        # ... and the bot answers again.
        reply = services.answer_visitor_message(say(visitor, "hi").pk, predicted("greeting", 0.95))
        assert reply is not None and reply.sender == "bot"

    def test_only_the_holder_hands_back_or_closes(self, visitor, agent, other_agent, fresh):
        agents.take_over(visitor.conversation.pk, agent)
        for action in (agents.hand_back, agents.close):
            with pytest.raises(AgentActionError) as refused:
                action(visitor.conversation.pk, other_agent)
            assert refused.value.code == "not_yours"
        assert fresh(visitor).status == "with_agent"

    def test_close_sets_closed_at_and_tells_everyone(self, visitor, agent, fresh):
        agents.take_over(visitor.conversation.pk, agent)
        agents.close(visitor.conversation.pk, agent)
        conversation = fresh(visitor)
        assert conversation.status == "closed" and conversation.closed_at is not None
        assert last_system_text(visitor) == "Alice closed the conversation."
        with pytest.raises(AgentActionError):
            agents.take_over(visitor.conversation.pk, agent)

    def test_every_change_of_hands_is_a_system_message(self, visitor, agent):
        services.hand_off(visitor.conversation.pk, "requested")
        agents.take_over(visitor.conversation.pk, agent)
        agents.hand_back(visitor.conversation.pk, agent)
        agents.take_over(visitor.conversation.pk, agent)
        agents.close(visitor.conversation.pk, agent)
        assert visitor.conversation.messages.filter(sender="system", internal=False).count() == 5


@pytest.mark.django_db(transaction=True)
def test_two_agents_taking_at_once_exactly_one_wins(visitor, agent, other_agent, fresh):
    services.hand_off(visitor.conversation.pk, "requested")
    start = threading.Barrier(2)
    outcomes = {}

    def take(user):
        try:
            start.wait()
            agents.take_over(visitor.conversation.pk, user)
            outcomes[user.username] = "won"
        except AgentActionError as error:
            outcomes[user.username] = error.code
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(user,)) for user in (agent, other_agent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["taken", "won"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "won")
    conversation = fresh(visitor)
    assert conversation.assigned_agent.username == winner
    assert conversation.messages.filter(sender="system", text__contains="joined").count() == 1


@pytest.mark.django_db
class TestWriting:
    def test_reply_needs_the_conversation(self, visitor, agent):
        with pytest.raises(AgentActionError) as refused:
            agents.reply(visitor.conversation.pk, agent, "hello")
        assert refused.value.code == "not_yours"

    def test_reply_is_an_agent_message_with_the_author(self, visitor, agent):
        agents.take_over(visitor.conversation.pk, agent)
        message = agents.reply(visitor.conversation.pk, agent, "  Hi, I'm Alice.  ")
        assert (message.sender, message.text, message.author, message.internal) == (
            "agent",
            "Hi, I'm Alice.",
            agent,
            False,
        )
        assert services.message_frame(message)["agent_name"] == "Alice"

    @pytest.mark.parametrize("text", ["", "   ", None, "x" * 2001])
    def test_bad_text_is_refused(self, visitor, agent, text):
        agents.take_over(visitor.conversation.pk, agent)
        with pytest.raises(AgentActionError):
            agents.reply(visitor.conversation.pk, agent, text)
        with pytest.raises(AgentActionError):
            agents.add_note(visitor.conversation.pk, agent, text)

    def test_a_note_is_internal_and_not_in_the_visitors_history(self, visitor, agent, fresh):
        note = agents.add_note(visitor.conversation.pk, agent, "VIP customer")
        assert note.internal
        assert services.messages_after(fresh(visitor), 0) == []
        assert [m.text for m in agents.transcript(fresh(visitor))] == ["VIP customer"]


@pytest.mark.django_db
class TestCorrections:
    def test_correcting_an_intent_stores_feedback_for_retraining(self, visitor, demo_intents, agent, say, predicted):
        message = say(visitor, "my parcel never came")
        services.answer_visitor_message(message.pk, predicted("returns", 0.41))
        agents.correct_intent(message.pk, agent, "order_status")
        feedback = Feedback.objects.get(source="correction")
        assert (feedback.message, feedback.suggested_intent, feedback.created_by) == (message, "order_status", agent)
        assert (feedback.predicted_intent, feedback.confidence) == ("returns", 0.41)

    def test_a_second_correction_updates_the_first(self, visitor, demo_intents, agent, other_agent, say, fresh):
        message = say(visitor, "my parcel never came")
        agents.correct_intent(message.pk, agent, "returns")
        agents.correct_intent(message.pk, other_agent, "order_status")
        assert list(Feedback.objects.filter(source="correction").values_list("suggested_intent", "created_by")) == [
            ("order_status", other_agent.pk)
        ]
        [visitor_message] = agents.transcript(fresh(visitor))
        assert visitor_message.correction == "order_status"

    def test_unknown_intents_and_non_visitor_messages_are_refused(self, visitor, demo_intents, agent, say):
        message = say(visitor, "hi")
        with pytest.raises(AgentActionError) as refused:
            agents.correct_intent(message.pk, agent, "no_such_intent")
        assert refused.value.code == "unknown_intent"
        note = agents.add_note(visitor.conversation.pk, agent, "note")
        with pytest.raises(AgentActionError) as refused:
            agents.correct_intent(note.pk, agent, "greeting")
        assert refused.value.code == "unknown_message"
        assert not Feedback.objects.filter(source="correction").exists()


@pytest.mark.django_db
def test_queue_lists_waiting_oldest_first_then_mine_then_the_bots(
    visitor, other_visitor, new_visitor, agent, other_agent, say
):
    third = new_visitor()
    services.hand_off(other_visitor.conversation.pk, "requested")
    services.hand_off(visitor.conversation.pk, "requested")
    say(third, "just browsing")
    mine = new_visitor()
    agents.take_over(mine.conversation.pk, agent)
    queue = agents.queue_for(agent)
    assert [c.pk for c in queue.waiting] == [other_visitor.conversation.pk, visitor.conversation.pk]
    assert [c.pk for c in queue.mine] == [mine.conversation.pk]
    assert [c.pk for c in queue.bot] == [third.conversation.pk]
    assert queue.bot[0].last_text == "just browsing"
    assert agents.queue_for(other_agent).colleagues == queue.mine
    assert Message.objects.filter(sender="agent").count() == 0
