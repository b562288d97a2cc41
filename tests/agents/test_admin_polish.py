"""Admin polish (issue 14): a read-only conversation, quick replies as a list, the
active model version kept."""

import pytest
from django.urls import reverse

from chatbot.nlu.admin.training_data import ResponseForm
from chatbot.replies.models import ReplyModelVersion

pytestmark = pytest.mark.django_db


def test_the_conversation_admin_shows_a_read_only_transcript(visitor, say, admin, client):
    say(visitor, "where is my parcel")
    client.force_login(admin)
    page = client.get(reverse("admin:conversations_conversation_change", args=[visitor.conversation.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "where is my parcel" in html
    assert 'name="status"' not in html and 'name="last_seq"' not in html and 'name="messages-0-text"' not in html


def test_quick_replies_are_edited_as_one_a_line():
    form = ResponseForm(
        data={"text": "Here you go.", "quick_replies": "Track order\n\n  Talk to a human \n", "position": 0}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["quick_replies"] == ["Track order", "Talk to a human"]
    assert form.fields["quick_replies"].prepare_value(["A", "B"]) == "A\nB"


def test_the_admin_refuses_to_delete_the_active_model_version(admin, client):
    active = ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir="x", is_active=True)
    spare = ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir="y")
    client.force_login(admin)
    url = reverse("admin:replies_replymodelversion_delete", args=[active.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert ReplyModelVersion.objects.filter(pk=active.pk).exists()
    assert "cannot be deleted" in response.content.decode()
    client.post(
        reverse("admin:replies_replymodelversion_changelist"),
        {"action": "delete_selected", "_selected_action": [active.pk, spare.pk], "post": "yes"},
    )
    assert list(ReplyModelVersion.objects.values_list("pk", flat=True)) == [active.pk]
