"""The agents' inbox (issue 14): views, search, transfer, the closed transcript and
the visitor's earlier conversations."""

import pytest

from chatbot.agents import services as agents
from chatbot.agents.services import AgentActionError
from chatbot.conversations import services
from chatbot.conversations.models import Message, Visitor

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(new_visitor, agent, say):
    """One waiting, one the agent holds, one closed and rated."""
    waiting, held, closed = new_visitor(), new_visitor(), new_visitor()
    say(waiting, "my blender arrived broken")
    services.hand_off(waiting.conversation.pk, "requested")
    say(held, "where is my parcel")
    agents.take_over(held.conversation.pk, agent)
    say(closed, "refund for order NW-123456")
    agents.take_over(closed.conversation.pk, agent)
    agents.reply(closed.conversation.pk, agent, "Done.")
    agents.close(closed.conversation.pk, agent)
    closed.conversation.__class__.objects.filter(pk=closed.conversation.pk).update(csat=4)
    Visitor.objects.filter(pk=closed.conversation.visitor_id).update(email="ada@example.com")
    return waiting, held, closed


def ids(conversations) -> set[str]:
    return {str(c.pk) for c in conversations}


def test_each_view_lists_its_conversations(three, agent, other_agent):
    waiting, held, closed = three
    assert ids(agents.inbox(agent, "mine")) == {held.conversation_id}
    assert ids(agents.inbox(other_agent, "mine")) == set()
    assert ids(agents.inbox(agent, "unassigned")) == {waiting.conversation_id}
    assert ids(agents.inbox(agent, "open")) == {waiting.conversation_id, held.conversation_id}
    assert ids(agents.inbox(agent, "closed")) == {closed.conversation_id}


@pytest.mark.parametrize("query", ["blender", "BLENDER"])
def test_search_finds_visitor_messages(three, agent, query):
    assert ids(agents.inbox(agent, "", query)) == {three[0].conversation_id}


def test_search_finds_an_email_and_a_conversation_id(three, agent):
    closed = three[2]
    assert ids(agents.inbox(agent, "closed", "ada@example")) == {closed.conversation_id}
    assert ids(agents.inbox(agent, "", closed.conversation_id)) == {closed.conversation_id}
    assert agents.inbox(agent, "", "nothing like this") == []


def test_the_inbox_pages_show_views_search_and_the_rating(three, agent, client):
    client.force_login(agent)
    page = client.get("/agent/queue/?view=closed").content.decode()
    assert "Rated 4/5" in page and "refund for order" in page and "my blender" not in page
    page = client.get("/agent/queue/?q=blender").content.decode()
    assert "my blender" in page and "where is my parcel" not in page


def test_a_closed_transcript_is_read_only_with_its_rating(three, agent, client):
    client.force_login(agent)
    page = client.get(f"/agent/c/{three[2].conversation_id}/").content.decode()
    assert "Read only" in page and "Rated 4/5" in page and "Done." in page
    assert 'id="composer-text"' not in page and "Take over" not in page


def test_transfer_to_a_colleague_leaves_an_event_in_the_transcript(three, agent, other_agent, fresh):
    held = three[1]
    agents.transfer(held.conversation.pk, agent, other_agent.pk)
    conversation = fresh(held)
    assert conversation.assigned_agent == other_agent and conversation.status == "with_agent"
    system = list(conversation.messages.filter(sender="system").order_by("seq").values_list("text", "internal"))
    assert ("Alice transferred the conversation to Bob.", True) in system
    assert system[-1] == ("Bob joined the conversation.", False)


def test_only_the_holder_transfers_and_only_to_an_agent(three, agent, other_agent, stranger):
    held = three[1]
    with pytest.raises(AgentActionError) as refused:
        agents.transfer(held.conversation.pk, other_agent, agent.pk)
    assert refused.value.code == "not_yours"
    with pytest.raises(AgentActionError) as refused:
        agents.transfer(held.conversation.pk, agent, stranger.pk)
    assert refused.value.code == "unknown_agent"


def test_transfer_through_the_dashboard(three, agent, other_agent, client, fresh):
    client.force_login(agent)
    response = client.post(
        f"/agent/c/{three[1].conversation_id}/transfer", {"to": other_agent.pk}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    assert fresh(three[1]).assigned_agent == other_agent


def test_the_side_panel_lists_the_visitors_earlier_conversations(visitor, agent, client, fresh):
    agents.close(visitor.conversation.pk, agent)
    later = services.authenticate(visitor.token)  # the same visitor's next conversation
    assert later.pk != visitor.conversation.pk
    Message.objects.create(conversation=later, seq=1, sender="visitor", text="hello again")
    client.force_login(agent)
    page = client.get(f"/agent/c/{later.pk}/").content.decode()
    assert "Earlier conversations" in page and f'data-conversation="{visitor.conversation.pk}"' in page


# --- Auto-assignment ---------------------------------------------------------------------


@pytest.fixture
def both_online(agent, other_agent):
    from chatbot.agents import presence

    presence.connect(agent.pk, "tab-alice")
    presence.connect(other_agent.pk, "tab-bob")
    return agent, other_agent


def test_auto_assignment_is_off_by_default(visitor, both_online, fresh, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.hand_off(visitor.conversation.pk, "requested")
    assert fresh(visitor).status == "waiting_for_agent" and fresh(visitor).assigned_agent is None


def test_auto_assignment_takes_turns_under_the_limit(
    new_visitor, both_online, settings, django_capture_on_commit_callbacks
):
    settings.AUTO_ASSIGN, settings.AUTO_ASSIGN_LIMIT = True, 1
    visitors = [new_visitor() for _ in range(3)]
    for v in visitors:
        with django_capture_on_commit_callbacks(execute=True):
            services.hand_off(v.conversation.pk, "requested")
    holders = [v.conversation.__class__.objects.get(pk=v.conversation.pk).assigned_agent for v in visitors]
    assert set(holders[:2]) == set(both_online)  # one each
    assert holders[2] is None  # both at their limit: it waits in the queue


def test_an_auto_assignment_that_loses_the_race_changes_nothing(visitor, both_online, agent, other_agent, fresh):
    services.hand_off(visitor.conversation.pk, "requested")
    agents.take_over(visitor.conversation.pk, other_agent)  # clicked first
    assert agents.auto_assign(visitor.conversation.pk) is None
    assert fresh(visitor).assigned_agent == other_agent
