"""Personal data over time: tokens expire, card numbers are never stored, old
conversations go, training data is masked wider, and a visitor can be exported
and erased with everything made from their words."""

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message, Visitor
from chatbot.nlu import services as nlu
from chatbot.nlu.models import Feedback, Intent, ModelVersion, TrainingExample
from chatbot.nlu.pii import mask_pii
from chatbot.replies.models import ReplyModelVersion
from tests.conftest import VisitorSession

CARD = "4111 1111 1111 1111"


# The privacy app and the audit log are imported inside the tests, so that each
# test fails on its own on code without them.


def audit_entries():
    from chatbot.audit.models import AuditEntry

    return AuditEntry.objects


def apply_retention():
    from chatbot.privacy.services import apply_retention

    return apply_retention()


def erasures():
    from chatbot.privacy.models import Erasure

    return Erasure.objects


def say(visitor, text: str) -> Message:
    message, _ = services.record_visitor_message(visitor.conversation.pk, text, uuid.uuid4())
    return message


# --- Tokens ----------------------------------------------------------------------


def test_a_token_unused_for_longer_than_its_lifetime_no_longer_opens_the_chat(visitor, settings):
    settings.VISITOR_TOKEN_TTL_DAYS = 30
    Visitor.objects.filter(pk=visitor.conversation.visitor_id).update(
        created_at=timezone.now() - timedelta(days=31), token_expires_at=None
    )
    assert services.authenticate(visitor.token) is None


def test_using_a_token_renews_it(visitor, settings):
    settings.VISITOR_TOKEN_TTL_DAYS = 30
    Visitor.objects.filter(pk=visitor.conversation.visitor_id).update(
        token_expires_at=timezone.now() + timedelta(days=1)
    )
    assert services.authenticate(visitor.token) is not None
    expires = Visitor.objects.get(pk=visitor.conversation.visitor_id).token_expires_at
    assert expires > timezone.now() + timedelta(days=29)


# --- At rest -------------------------------------------------------------------


def test_card_numbers_are_masked_before_a_message_is_stored(visitor):
    say(visitor, f"my card is {CARD}, expiry 12/29")
    stored = Message.objects.get(conversation=visitor.conversation, sender="visitor").text
    assert "4111" not in stored and "[card]" in stored


def test_masking_at_rest_can_be_turned_off(visitor, settings):
    settings.MASK_CARDS_AT_REST = False
    say(visitor, f"my card is {CARD}")
    assert CARD in Message.objects.get(conversation=visitor.conversation, sender="visitor").text


@pytest.mark.parametrize(
    ("text", "kept_out", "mask"),
    [
        ("Hi, my name is Anna Schmidt and my order is late", "Schmidt", "[name]"),
        ("this is John Miller from accounting", "Miller", "[name]"),
        ("Please ship to 221B Baker Street, London NW1 6XE", "Baker", "[address]"),
        ("Ship to NW1 6XE please", "NW1 6XE", "[postcode]"),
        ("I live at Hauptstraße 5 in Berlin", "Hauptstraße", "[address]"),
        ("Refund to DE89 3704 0044 0532 0130 00 please", "3704", "[iban]"),
        ("Refund to GB82WEST12345698765432", "WEST", "[iban]"),
    ],
)
def test_training_data_masking_covers_names_addresses_and_ibans(text, kept_out, mask):
    masked = mask_pii(text)
    assert kept_out not in masked and mask in masked


@pytest.mark.parametrize(
    "text", ["I am waiting for my order", "this is not what I ordered", "Where is Main Street store?"]
)
def test_ordinary_sentences_are_left_alone(text):
    assert mask_pii(text) == text


# --- Retention -------------------------------------------------------------------


def _age(visitor, days: int) -> None:
    past = timezone.now() - timedelta(days=days)
    Conversation.objects.filter(pk=visitor.conversation.pk).update(updated_at=past)
    Visitor.objects.filter(pk=visitor.conversation.visitor_id).update(last_seen_at=past, email="old@example.com")


def test_retention_deletes_conversations_older_than_the_setting(db, settings):
    settings.RETENTION_DAYS, settings.RETENTION_ACTION = 30, "delete"
    old, recent = VisitorSession(), VisitorSession()
    say(old, "an old question")
    say(recent, "a new question")
    _age(old, 31)
    apply_retention()
    assert not Conversation.objects.filter(pk=old.conversation.pk).exists()
    assert not Visitor.objects.filter(pk=old.conversation.visitor_id).exists()
    assert Message.objects.filter(conversation=recent.conversation).exists()


def test_retention_can_anonymise_instead_and_the_token_dies(db, settings):
    settings.RETENTION_DAYS, settings.RETENTION_ACTION = 30, "anonymise"
    old = VisitorSession()
    say(old, "my address is secret")
    _age(old, 31)
    result = apply_retention()
    assert result == {"anonymised_messages": 1, "anonymised_visitors": 1}
    assert Message.objects.get(conversation=old.conversation).text == "[removed]"
    row = Visitor.objects.get(pk=old.conversation.visitor_id)
    assert row.email == "" and services.authenticate(old.token) is None
    assert apply_retention() == {"anonymised_messages": 0, "anonymised_visitors": 0}  # safe to run twice
    assert audit_entries().filter(action="privacy.retention").count() == 1


def test_retention_runs_daily_from_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["privacy-retention"]
    assert entry["task"] == "chatbot.privacy.tasks.apply_retention"
    from chatbot.privacy import tasks

    assert tasks.apply_retention.name == entry["task"]


# --- Export and erasure ------------------------------------------------------------


@pytest.fixture
def customer(db, agent):
    """A visitor whose words went into training data and whose chat an agent answered,
    and two models trained after that."""
    from chatbot.agents import services as agents

    session = VisitorSession()
    services.identify(session.conversation, "Grace", "grace@example.com")
    message = say(session, "my parcel to grace lane never came")
    feedback = Feedback.objects.create(message=message, source=Feedback.Source.FALLBACK)
    Intent.objects.create(name="order_status")
    nlu.accept_feedback(feedback.pk, "order_status", user=agent)
    agents.take_over(session.conversation.pk, agent)
    agents.reply(session.conversation.pk, agent, "Sorry Grace, I will check.")
    session.intent_version = ModelVersion.objects.create(status=ModelVersion.Status.READY, model_id="m1")
    session.reply_version = ReplyModelVersion.objects.create(status=ReplyModelVersion.Status.READY)
    return session


def test_export_gives_the_visitor_everything_stored_about_them(customer):
    out = io.StringIO()
    call_command("export_visitor_data", "--email", "GRACE@example.com", stdout=out)
    data = json.loads(out.getvalue())
    (visitor,) = data["visitors"]
    assert visitor["email"] == "grace@example.com" and visitor["identity_verified"] is False
    texts = [m["text"] for m in visitor["conversations"][0]["messages"]]
    assert "my parcel to grace lane never came" in texts
    agents = {m["agent"] for m in visitor["conversations"][0]["messages"] if m["agent"]}
    assert agents == {"Alice"}  # the display name, never the login name
    assert audit_entries().filter(action="privacy.export").exists()


def test_erasure_removes_the_visitor_and_everything_made_from_their_words(customer, demo_intents):
    other = VisitorSession()
    say(other, "somebody else's question")
    examples_before = TrainingExample.objects.exclude(source=TrainingExample.Source.FEEDBACK).count()
    out = io.StringIO()
    call_command("erase_visitor_data", "--email", "grace@example.com", "--yes", stdout=out)
    assert not Visitor.objects.filter(email="grace@example.com").exists()
    assert not Message.objects.filter(text__icontains="parcel").exists()
    assert not Feedback.objects.exists()
    assert not TrainingExample.objects.filter(source=TrainingExample.Source.FEEDBACK).exists()
    assert TrainingExample.objects.count() == examples_before  # the demo's own examples stay
    assert Message.objects.filter(conversation=other.conversation).exists()
    from chatbot.replies.pairs import pairs_from_conversations

    assert not any("parcel" in turn.text for pair in pairs_from_conversations() for turn in pair.context)
    erasure = erasures().get()
    assert erasure.intent_versions == [customer.intent_version.pk]
    assert erasure.reply_versions == [customer.reply_version.pk]
    assert erasure.needs_retraining
    assert "grace" not in json.dumps(erasure.counts) and "grace" not in erasure.found_by
    entry = audit_entries().get(action="privacy.erase")
    assert "grace" not in json.dumps(entry.details).lower()


def test_erasure_by_an_unknown_email_says_so_and_erases_nothing(customer):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No visitor"):
        call_command("erase_visitor_data", "--email", "nobody@example.com", "--yes")
    assert Visitor.objects.filter(email="grace@example.com").exists()


def test_the_admin_erases_a_visitor_after_confirmation(customer, admin):
    client = Client()
    client.force_login(admin)
    visitor_id = customer.conversation.visitor_id
    form = {"action": "erase_visitor_data", "_selected_action": [visitor_id]}
    confirm = client.post("/admin/conversations/visitor/", form)
    assert confirm.status_code == 200 and "Yes, erase" in confirm.content.decode()
    assert Visitor.objects.filter(pk=visitor_id).exists()
    client.post("/admin/conversations/visitor/", {**form, "confirmed": "yes"})
    assert not Visitor.objects.filter(pk=visitor_id).exists()
    assert audit_entries().get(action="privacy.erase").actor == admin


def test_the_admin_exports_a_visitor(customer, admin):
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/conversations/visitor/",
        {"action": "export_visitor_data", "_selected_action": [customer.conversation.visitor_id]},
    )
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["visitors"][0]["email"] == "grace@example.com"


def test_an_agent_cannot_erase_visitors(customer, agent):
    client = Client()
    client.force_login(agent)
    form = {"action": "erase_visitor_data", "_selected_action": [customer.conversation.visitor_id], "confirmed": "yes"}
    client.post("/admin/conversations/visitor/", form)
    assert Visitor.objects.filter(pk=customer.conversation.visitor_id).exists()
