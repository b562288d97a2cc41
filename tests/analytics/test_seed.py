"""seed_analytics: realistic history with every outcome, two model versions and agents."""

import pytest
from django.core.management import CommandError, call_command

from chatbot.analytics.models import ConversationOutcome, Outcome, SeedRun
from chatbot.conversations.models import Conversation, Visitor


def test_seed_writes_history_with_every_outcome_and_finalises_it(db):
    call_command("seed_analytics", conversations=300, days=30)
    assert Conversation.objects.count() == 300
    outcomes = set(ConversationOutcome.objects.filter(final=True).values_list("outcome", flat=True))
    assert outcomes == {Outcome.RESOLVED_BY_BOT, Outcome.HANDED_OFF, Outcome.ABANDONED, Outcome.UNANSWERED}
    versions = ConversationOutcome.objects.exclude(model_version=None).values("model_version").distinct()
    assert versions.count() == 2
    assert ConversationOutcome.objects.exclude(agent=None).values("agent").distinct().count() == 3
    assert ConversationOutcome.objects.exclude(csat=None).exists()
    assert not SeedRun.objects.get().demo


def test_demo_seed_is_marked_and_only_fills_an_empty_database(db):
    call_command("seed_analytics", conversations=20, demo=True)
    assert SeedRun.objects.get().demo
    assert set(Visitor.objects.values_list("name", flat=True)) == {"Demo visitor"}
    call_command("seed_analytics", conversations=20, demo=True)
    assert Conversation.objects.count() == 20


def test_seed_refuses_nonsense(db):
    with pytest.raises(CommandError):
        call_command("seed_analytics", conversations=0)
