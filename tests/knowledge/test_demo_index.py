"""`make run`'s demo answers from its help center from the first question: the
bootstrap builds and activates the knowledge index (the rebuild that importing the
articles schedules would go to the command's own in-process broker and be lost)."""

import pytest
from django.core.management import call_command

from chatbot.knowledge.models import KnowledgeIndexVersion


@pytest.mark.django_db
def test_the_demo_starts_with_an_active_knowledge_index_and_a_second_start_keeps_it(active_model, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    call_command("bootstrap_demo")
    index = KnowledgeIndexVersion.objects.get(is_active=True)
    assert index.status == KnowledgeIndexVersion.Status.READY
    call_command("bootstrap_demo")
    assert KnowledgeIndexVersion.objects.get(is_active=True) == index
    assert KnowledgeIndexVersion.objects.count() == 1
