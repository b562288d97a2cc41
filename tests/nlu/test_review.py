"""The review inbox: what lands in it, and accepting or ignoring it."""

import uuid

import pytest
from django.test import override_settings
from django.urls import reverse

from chatbot.conversations import services as chat
from chatbot.conversations.models import Message
from chatbot.conversations.services import BotPrediction
from chatbot.nlu import services
from chatbot.nlu.models import Feedback, Intent, TrainingExample

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_loaded_model(monkeypatch):
    """A model another test left loaded in this process would bring its own review
    point (services.review_confidence_threshold); these tests set the setting."""
    from chatbot.nlu import serving

    monkeypatch.setattr(serving, "_current", None)


def answered(visitor, text: str, intent: str, confidence: float, out_of_scope: bool = False) -> Message:
    message, _ = chat.record_visitor_message(visitor.conversation.pk, text, uuid.uuid4())
    chat.answer_visitor_message(message.pk, BotPrediction(intent, confidence, out_of_scope, None))
    return message


def feedback_on(message: Message, source=Feedback.Source.THUMBS_DOWN, **fields) -> Feedback:
    return Feedback.objects.create(message=message, source=source, **fields)


# --- What lands in the inbox ----------------------------------------------------------


@override_settings(INTENT_CONFIDENCE_THRESHOLD=0.5, REVIEW_CONFIDENCE_THRESHOLD=0.75)
def test_answer_below_the_review_threshold_goes_to_review(visitor, demo_intents):
    message = answered(visitor, "is my loot on the way", "product_availability", 0.62)
    feedback = services.note_low_confidence(message.pk)
    assert (feedback.source, feedback.predicted_intent, feedback.confidence) == (
        "low_confidence",
        "product_availability",
        0.62,
    )
    assert services.note_low_confidence(message.pk) == feedback  # once


@override_settings(INTENT_CONFIDENCE_THRESHOLD=0.5, REVIEW_CONFIDENCE_THRESHOLD=0.75)
def test_confident_answers_and_fallbacks_get_no_low_confidence_feedback(visitor, demo_intents):
    assert services.note_low_confidence(answered(visitor, "hi", "greeting", 0.9).pk) is None
    fallback = answered(visitor, "blorp", "returns", 0.3)
    assert services.note_low_confidence(fallback.pk) is None
    assert list(Feedback.objects.values_list("source", flat=True)) == ["fallback"]


@override_settings(INTENT_CONFIDENCE_THRESHOLD=0.5, REVIEW_CONFIDENCE_THRESHOLD=0.75)
def test_the_inference_task_path_decides_from_the_prediction_it_holds(visitor, demo_intents, django_assert_num_queries):
    confident = answered(visitor, "hi", "greeting", 0.9)
    with django_assert_num_queries(0):
        assert services.note_low_confidence(confident.pk, confidence=0.9, out_of_scope=False) is None
    unsure = answered(visitor, "is my loot on the way", "product_availability", 0.62)
    feedback = services.note_low_confidence(unsure.pk, confidence=0.62, out_of_scope=False)
    assert feedback.source == "low_confidence" and feedback.message_id == unsure.pk


def test_the_inference_task_notes_low_confidence(visitor, demo_intents, monkeypatch):
    from chatbot.conversations import tasks

    class Model:
        version_id = None

        class predictor:  # noqa: N801 (stands in for inference.Predictor)
            @staticmethod
            def predict(texts):
                from inference import Prediction

                return [Prediction("product_availability", 0.6, False)]

    monkeypatch.setattr(tasks.serving, "current_model", lambda: Model)
    message, _ = chat.record_visitor_message(visitor.conversation.pk, "is my loot on the way", uuid.uuid4())
    tasks.reply_to_visitor_message(message.pk)
    assert Feedback.objects.get(message=message).source == "low_confidence"


# --- Accepting and ignoring -------------------------------------------------------------


def test_accepting_masks_personal_data_and_settles_the_message(visitor, demo_intents, admin):
    message = answered(visitor, "where is NW-123456, mail me at jo@example.com", "oos", 0.2, out_of_scope=True)
    thumbs = feedback_on(message)
    example = services.accept_feedback(thumbs.pk, "order_status", user=admin)
    assert (example.text, example.intent.name, example.source) == (
        "where is [order_id], mail me at [email]",
        "order_status",
        "feedback",
    )
    # The fallback feedback on the same message is settled too.
    assert set(Feedback.objects.values_list("status", "reviewed_by", "training_example")) == {
        ("accepted", admin.pk, example.pk)
    }


def test_agents_correction_is_the_suggested_label(visitor, demo_intents):
    message = answered(visitor, "is my loot on the way", "product_availability", 0.62)
    correction = feedback_on(message, Feedback.Source.CORRECTION, suggested_intent="order_status")
    assert services.suggested_label(correction) == "order_status"
    assert services.suggested_label(feedback_on(message)) == ""


def test_accepting_as_a_new_intent_creates_it(visitor, demo_intents):
    feedback = feedback_on(answered(visitor, "do you sell moon rocks", "oos", 0.1, out_of_scope=True))
    services.accept_feedback(feedback.pk, "moon_rocks", create_intent=True)
    assert TrainingExample.objects.get(text="do you sell moon rocks").intent.name == "moon_rocks"


def test_accepting_with_an_unknown_intent_is_refused_and_changes_nothing(visitor, demo_intents):
    feedback = feedback_on(answered(visitor, "do you sell moon rocks", "oos", 0.1, out_of_scope=True))
    with pytest.raises(services.ReviewRefused):
        services.accept_feedback(feedback.pk, "moon_rocks")
    with pytest.raises(services.ReviewRefused):
        services.accept_feedback(feedback.pk, "not valid!", create_intent=True)
    assert not Intent.objects.filter(name="moon_rocks").exists()
    assert Feedback.objects.get(pk=feedback.pk).status == "pending"


def test_relabelling_an_existing_example_moves_it(visitor, demo_intents):
    feedback = feedback_on(answered(visitor, "hi", "greeting", 0.9))
    services.accept_feedback(feedback.pk, "goodbye")
    assert TrainingExample.objects.get(text="hi").intent.name == "goodbye"


# --- The admin pages -------------------------------------------------------------------------


def test_inbox_lists_pending_feedback_with_its_facts(client, admin, visitor, demo_intents):
    message = answered(visitor, "is my loot on the way", "product_availability", 0.62)
    feedback_on(
        message,
        Feedback.Source.CORRECTION,
        suggested_intent="order_status",
        predicted_intent="product_availability",
        confidence=0.62,
    )
    ignored = feedback_on(answered(visitor, "blah", "greeting", 0.9))
    services.ignore_feedback([ignored.pk])
    client.force_login(admin)
    body = client.get(reverse("admin:nlu_feedback_changelist")).content.decode()
    assert "is my loot on the way" in body and "product_availability (0.62)" in body
    assert (
        "order_status" in body
        and reverse("admin:conversations_conversation_change", args=[visitor.conversation.pk]) in body
    )
    assert "blah" not in body  # ignored: not in the pending inbox
    assert "blah" in client.get(reverse("admin:nlu_feedback_changelist") + "?status=all").content.decode()
    only_thumbs = client.get(reverse("admin:nlu_feedback_changelist") + "?source__exact=thumbs_down").content.decode()
    assert "is my loot on the way" not in only_thumbs


def test_review_page_prefills_the_correction_and_accepts(client, admin, visitor, demo_intents):
    message = answered(visitor, "is my loot on the way? call +49 30 1234567", "product_availability", 0.62)
    correction = feedback_on(message, Feedback.Source.CORRECTION, suggested_intent="order_status")
    client.force_login(admin)
    url = reverse("admin:nlu_feedback_review", args=[correction.pk])
    page = client.get(url).content.decode()
    assert '<option value="order_status" selected>' in page
    assert "is my loot on the way? call [phone]" in page
    response = client.post(url, {"text": "is my loot on the way? call +49 30 1234567", "intent": "order_status"})
    assert response.status_code == 302
    assert TrainingExample.objects.get(source="feedback").text == "is my loot on the way? call [phone]"


def test_review_page_ignore(client, admin, visitor, demo_intents):
    feedback = feedback_on(answered(visitor, "asdf", "greeting", 0.9))
    client.force_login(admin)
    client.post(reverse("admin:nlu_feedback_review", args=[feedback.pk]), {"ignore": "1"})
    assert Feedback.objects.get(pk=feedback.pk).status == "ignored"
    assert not TrainingExample.objects.filter(source="feedback").exists()


def test_bulk_accept_uses_each_suggestion_and_bulk_ignore(client, admin, visitor, demo_intents):
    one = feedback_on(
        answered(visitor, "is my loot on the way", "product_availability", 0.6),
        Feedback.Source.CORRECTION,
        suggested_intent="order_status",
    )
    two = feedback_on(answered(visitor, "money back pls", "oos", 0.2, out_of_scope=True))
    three = feedback_on(answered(visitor, "qwerty", "oos", 0.2, out_of_scope=True))
    client.force_login(admin)
    changelist = reverse("admin:nlu_feedback_changelist")
    confirm = client.post(changelist, {"action": "accept_selected", "_selected_action": [one.pk, two.pk]})
    assert "Accept as training examples" in confirm.content.decode()
    client.post(
        changelist,
        {
            "action": "accept_selected",
            "_selected_action": [one.pk, two.pk],
            "apply": "1",
            "use_suggestions": "on",
            "intent": "refund_status",
        },
    )
    assert TrainingExample.objects.get(text="is my loot on the way").intent.name == "order_status"
    assert TrainingExample.objects.get(text="money back pls").intent.name == "refund_status"
    client.post(changelist, {"action": "ignore_selected", "_selected_action": [three.pk]})
    assert Feedback.objects.get(pk=three.pk).status == "ignored"


@pytest.mark.parametrize("who", ["stranger", "agent"])
def test_non_staff_cannot_open_the_inbox(client, who, request):
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("admin:nlu_feedback_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_permission_cannot_accept(client, staff_without_perms, visitor, demo_intents):
    feedback = feedback_on(answered(visitor, "asdf", "greeting", 0.9))
    client.force_login(staff_without_perms)
    url = reverse("admin:nlu_feedback_review", args=[feedback.pk])
    assert client.post(url, {"text": "asdf", "intent": "greeting"}).status_code == 403
    assert Feedback.objects.get(pk=feedback.pk).status == "pending"


# --- One item per message (issue 14) -----------------------------------------------------


def test_the_review_inbox_lists_a_message_once_with_every_reason_and_never_a_thumbs_up(
    visitor, demo_intents, admin, client
):
    twice = answered(visitor, "blorp", "returns", 0.2)  # a fallback...
    feedback_on(twice)  # ...and a thumbs down
    liked = answered(visitor, "where is my order", "order_status", 0.95)
    feedback_on(liked, Feedback.Source.THUMBS_UP)
    client.force_login(admin)
    page = client.get(reverse("admin:nlu_feedback_changelist")).content.decode()
    assert page.count(">blorp<") == 1
    assert "Fallback, Thumbs Down" in page
    assert "where is my order" not in page


def test_ignoring_a_message_settles_all_its_reasons(visitor, demo_intents):
    message = answered(visitor, "blorp", "returns", 0.2)
    feedback_on(message)
    first = Feedback.objects.filter(message=message).order_by("pk").first()
    services.ignore_feedback([first.pk])
    assert set(Feedback.objects.filter(message=message).values_list("status", flat=True)) == {"ignored"}


@override_settings(INTENT_CONFIDENCE_THRESHOLD=0.5, REVIEW_CONFIDENCE_THRESHOLD=0.75)
def test_review_threshold_follows_the_active_models_calibration(visitor, demo_intents, monkeypatch):
    from types import SimpleNamespace

    from chatbot.nlu import serving

    def holding(point):
        model = SimpleNamespace(config=SimpleNamespace(review_threshold=point))  # stands in for inference.Predictor
        monkeypatch.setattr(serving, "_current", serving.LoadedModel(version_id=1, predictor=model))

    holding(0.55)  # this model's answers at 0.62 were right often enough on validation
    assert services.review_confidence_threshold() == 0.55
    assert (
        services.note_low_confidence(answered(visitor, "is my loot on the way", "product_availability", 0.62).pk)
        is None
    )
    unsure = answered(visitor, "is my loot in stock", "product_availability", 0.5)
    assert services.note_low_confidence(unsure.pk, confidence=0.5, out_of_scope=False).source == "low_confidence"
    holding(None)  # a model trained before the point was stored: the setting decides
    assert services.review_confidence_threshold() == 0.75
    monkeypatch.setattr(serving, "_current", None)  # no model loaded in this process
    assert services.review_confidence_threshold() == 0.75
