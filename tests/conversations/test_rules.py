"""Who may take, hand back and close a conversation: the rules on the model
(no database), and the dashboard's buttons following the same rules."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from chatbot.agents.templatetags.agents import reason_tag
from chatbot.conversations.models import Conversation, HandoffReason

User = get_user_model()
ALICE, BOB = User(pk=1, username="alice"), User(pk=2, username="bob")


def conversation(status: str, holder=None) -> Conversation:
    return Conversation(status=status, assigned_agent_id=holder.pk if holder else None)


# (status, holder) -> what Alice may do: (take, hand back, close)
RULES = [
    ("bot", None, (True, False, True)),
    ("waiting_for_agent", None, (True, True, True)),
    ("with_agent", ALICE, (False, True, True)),
    ("with_agent", BOB, (False, False, False)),
    ("closed", None, (False, False, False)),
    ("closed", ALICE, (False, False, False)),
]


@pytest.mark.parametrize("status, holder, allowed", RULES)
def test_what_an_agent_may_do_with_a_conversation(status, holder, allowed):
    c = conversation(status, holder)
    assert (c.can_take(ALICE), c.can_hand_back(ALICE), c.can_close(ALICE)) == allowed


def test_handoff_reasons_keep_their_stored_values_and_texts():
    assert HandoffReason.values == ["requested", "fallback", "thumbs_down", "agent"]
    assert Conversation(handoff_reason="fallback").get_handoff_reason_display() == "the bot could not answer"
    assert [reason_tag(value) for value in HandoffReason.values] == [
        "Asked for a person",
        "Bot stuck",
        "Disliked answer",
        "Taken by agent",
    ]
    assert reason_tag("something_older") == "something_older"


@pytest.mark.django_db
@pytest.mark.parametrize("status, holder, allowed", RULES)
def test_the_dashboard_shows_the_buttons_the_rules_allow(status, holder, allowed, visitor, agent, other_agent):
    holders = {ALICE: agent, BOB: other_agent, None: None}
    Conversation.objects.filter(pk=visitor.conversation.pk).update(status=status, assigned_agent=holders[holder])
    client = Client()
    client.force_login(agent)
    page = client.get(reverse("agents:conversation", args=[visitor.conversation.pk])).content.decode()
    shown = tuple(f'data-action="{action}"' in page for action in ("take", "hand_back", "close"))
    assert shown == allowed
