"""Why this answer: the explanation task on the inference queue, its cache per
(message, model version), the push to the agents, and what a retry does."""

import pytest

from chatbot import realtime
from chatbot.celery import Queue
from chatbot.conversations.models import Message
from chatbot.nlu import explanations, tasks
from chatbot.nlu.models import Explanation, ModelVersion, TrainingExample

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered(visitor, say, active_model):
    """A visitor message the active (real, small) demo model answered."""

    def answered(text: str = "where is my order? it has not arrived yet"):
        message = say(visitor, text)
        Message.objects.filter(pk=message.pk).update(intent="order_status", confidence=0.9, model_version=active_model)
        message.refresh_from_db()
        return message

    return answered


@pytest.fixture
def pushes(monkeypatch):
    """(group, event) of every explanation pushed (the chat's own events left out)."""
    sent = []

    def push(group, event):
        if "explanation" in event["type"]:
            sent.append((group, event))

    monkeypatch.setattr(realtime, "push", push)
    return sent


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed():` runs what waits for the transaction to commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def queued(monkeypatch):
    """The explanation tasks sent to the broker, as (message id, version id)."""
    sent = []
    monkeypatch.setattr(tasks.explain_message, "delay", lambda *args: sent.append(args))
    return sent


def test_the_task_runs_on_the_inference_queue():
    assert tasks.explain_message.queue == Queue.INFERENCE


def test_the_task_explains_the_message_with_the_version_that_answered_it(answered, active_model, pushes):
    message = answered()

    tasks.explain_message(message.pk, active_model.pk)

    row = Explanation.objects.get(message=message, model_version=active_model)
    assert row.status == Explanation.Status.READY, row.error
    data = row.data
    assert data["text"] == message.text
    assert data["intent"] == "order_status"
    assert data["score_name"] in ("probability", "energy")
    assert 0 < data["confidence"] <= 1 and data["threshold"] is not None
    assert len(data["runners_up"]) == 3 and all(label != data["explained_intent"] for label, _ in data["runners_up"])
    # The words with their offsets into the text, the strongest pulling towards the intent.
    assert [message.text[w["start"] : w["end"]] for w in data["words"]] == message.text.split()
    assert max(w["weight"] for w in data["words"]) > 0
    # The three nearest training examples, each a real row to edit.
    assert len(data["neighbours"]) == 3
    for neighbour in data["neighbours"]:
        example = TrainingExample.objects.get(pk=neighbour["example_id"])
        assert (example.text, example.intent.name) == (neighbour["text"], neighbour["intent"])
    assert data["neighbours"][0]["intent"] == "order_status"
    similarities = [n["similarity"] for n in data["neighbours"]]
    assert similarities == sorted(similarities, reverse=True)


def test_the_result_is_pushed_to_the_agents_and_never_to_the_conversation(answered, active_model, pushes):
    message = answered()
    tasks.explain_message(message.pk, active_model.pk)

    assert [group for group, _ in pushes] == [realtime.AGENTS_GROUP]
    event = pushes[0][1]
    assert event["type"] == "message.explanation"
    assert event["conversation_id"] == str(message.conversation_id)
    assert event["message_id"] == message.pk and event["status"] == "ready"
    assert event["explanation"]["neighbours"]


def test_running_the_task_twice_computes_and_pushes_once(answered, active_model, pushes, monkeypatch):
    message = answered()
    tasks.explain_message(message.pk, active_model.pk)
    first = Explanation.objects.get().data

    monkeypatch.setattr(explanations, "explain_text", lambda *a: pytest.fail("computed again"))
    tasks.explain_message(message.pk, active_model.pk)

    assert Explanation.objects.count() == 1
    assert Explanation.objects.get().data == first
    assert len(pushes) == 1


def test_asking_queues_one_task_and_answers_from_the_cache_afterwards(
    committed, answered, active_model, queued, pushes
):
    message = answered()
    with committed():
        row = explanations.request_explanation(message.pk)
    assert row.status == Explanation.Status.PENDING
    with committed():
        explanations.request_explanation(message.pk)  # a second agent asks while it is computed
    assert queued == [(message.pk, active_model.pk)]

    tasks.explain_message(*queued[0])
    with committed():
        row = explanations.request_explanation(message.pk)
    assert row.status == Explanation.Status.READY
    assert len(queued) == 1


def test_a_new_model_version_gets_its_own_explanation(committed, answered, active_model, queued, pushes):
    message = answered()
    tasks.explain_message(message.pk, active_model.pk)
    newer = ModelVersion.objects.create(
        status=ModelVersion.Status.READY, artifact_dir=active_model.artifact_dir, model_id="newer"
    )
    Message.objects.filter(pk=message.pk).update(model_version=newer)

    with committed():
        row = explanations.request_explanation(message.pk)

    assert row.model_version_id == newer.pk and row.status == Explanation.Status.PENDING
    assert queued == [(message.pk, newer.pk)]
    assert Explanation.objects.count() == 2


def test_a_broken_artifact_fails_with_a_reason_and_can_be_asked_again(
    committed, answered, active_model, queued, pushes, tmp_path
):
    message = answered()
    ModelVersion.objects.filter(pk=active_model.pk).update(artifact_dir=str(tmp_path / "gone"))

    tasks.explain_message(message.pk, active_model.pk)

    row = Explanation.objects.get()
    assert row.status == Explanation.Status.FAILED and row.error
    assert pushes[0][1]["status"] == "failed" and pushes[0][1]["error"]
    with committed():
        again = explanations.request_explanation(message.pk)
    assert again.status == Explanation.Status.PENDING and not again.error
    assert queued == [(message.pk, active_model.pk)]


def test_a_message_no_model_answered_has_nothing_to_explain(visitor, say, queued):
    message = say(visitor, "hello")
    with pytest.raises(explanations.ExplanationRefused):
        explanations.request_explanation(message.pk)
    assert queued == [] and not Explanation.objects.exists()


def test_the_examples_embeddings_are_computed_once_per_model_version(answered, active_model, pushes, monkeypatch):
    first, second = answered("where is my order"), answered("i want my money back")
    tasks.explain_message(first.pk, active_model.pk)
    encoder = next(iter(explanations._encoders.values()))
    calls = []
    real_encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts: calls.append(len(texts)) or real_encode(texts))

    tasks.explain_message(second.pk, active_model.pk)

    assert calls == [1]  # only the visitor's text; the examples came from the version's cache
    assert len(explanations._embeddings[explanations._key(active_model)]) == TrainingExample.objects.count()
    assert Explanation.objects.get(message=second).data["neighbours"]


# --- The admin's pages: the review inbox item and the message view ----------------------


@pytest.fixture
def admin_client(admin):
    from django.test import Client

    client = Client()
    client.force_login(admin)
    return client


def admin_pages(message) -> list[str]:
    from django.urls import reverse

    from chatbot.nlu.models import Feedback

    feedback = Feedback.objects.create(message=message, source=Feedback.Source.LOW_CONFIDENCE, predicted_intent="x")
    return [
        reverse("admin:nlu_feedback_review", args=[feedback.pk]),
        reverse("admin:conversations_message_change", args=[message.pk]),
    ]


def test_admin_pages_ask_for_the_explanation_then_show_it(
    answered, active_model, admin_client, committed, queued, pushes
):
    message = answered("where is my order <script>alert(1)</script>")
    pages = admin_pages(message)
    with committed():
        pending = [admin_client.get(url) for url in pages]
    for response in pending:
        assert response.status_code == 200
        assert b'id="explanation-pending"' in response.content
    assert queued == [(message.pk, active_model.pk)]  # two pages, one task

    tasks.explain_message(*queued[0])

    row = Explanation.objects.get()
    for url in pages:
        html = admin_client.get(url).content.decode()
        assert 'id="explanation-words"' in html
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        for neighbour in row.data["neighbours"]:
            assert f"/admin/nlu/trainingexample/{neighbour['example_id']}/change/" in html
        assert f"against threshold {row.data['threshold']:.3f}" in html
    assert queued == [(message.pk, active_model.pk)]  # answered from the cache


def test_the_admin_message_view_of_a_bot_message_shows_no_explanation(visitor, say, admin_client, queued):
    from django.urls import reverse

    say(visitor, "hello")
    bot = Message.objects.create(conversation=visitor.conversation, seq=99, sender=Message.Sender.BOT, text="Hi!")
    response = admin_client.get(reverse("admin:conversations_message_change", args=[bot.pk]))
    assert response.status_code == 200
    assert b'id="explanation"' not in response.content and queued == []


def test_strangers_do_not_see_the_admin_message_view(answered, stranger, queued):
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(stranger)
    response = client.get(reverse("admin:conversations_message_change", args=[answered().pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert queued == []


# --- The model report: per-intent words and the reliability diagram ---------------------


@pytest.fixture(scope="module")
def holdout_report(split_model_dir):
    """The intent kind's evaluation of the split model on the demo data's held-out part."""
    import yaml

    from chatbot.nlu import evaluation, services
    from inference import Predictor
    from tests.conftest import DEMO_INTENTS

    data = yaml.safe_load(DEMO_INTENTS.read_text())
    pairs = [(text, intent["name"]) for intent in data["intents"] for text in intent["examples"]]
    _, holdout = evaluation.split_examples(pairs)
    return services.intent_models.evaluate(Predictor.load(split_model_dir), holdout), holdout


def test_the_evaluation_report_holds_per_intent_words_and_the_reliability_diagram(holdout_report):
    report, holdout = holdout_report
    curve = report["reliability"]
    assert sum(b["count"] for b in curve["bins"]) == len(holdout)
    # The ECE is the count-weighted gap between confidence and accuracy, bin by bin.
    gap = sum(b["count"] * abs(b["confidence"] - b["accuracy"]) for b in curve["bins"]) / len(holdout)
    assert curve["ece"] == pytest.approx(gap, abs=1e-3)
    assert 0 <= curve["ece"] < 0.5
    held_intents = {intent for _, intent in holdout}
    assert set(report["intent_words"]) <= held_intents and len(report["intent_words"]) >= len(held_intents) // 2
    words = dict(report["intent_words"]["order_status"])
    assert "order" in words and all(weight > 0 for weight in words.values())


def test_the_model_report_shows_them(client, admin, holdout_report, tmp_path):
    from django.urls import reverse

    report, _ = holdout_report
    version = ModelVersion.objects.create(status=ModelVersion.Status.READY, artifact_dir=str(tmp_path), report=report)
    client.force_login(admin)
    html = client.get(reverse("admin:nlu_modelversion_report", args=[version.pk])).content.decode()
    assert f"expected calibration error {report['reliability']['ece']:.3f}" in html
    assert 'id="intent-words"' in html and 'id="reliability-bins"' in html
    top_word, weight = report["intent_words"]["order_status"][0]
    assert f'<td>order_status</td><td><span class="intent-word" title="{weight}">{top_word} <small>' in html
    svg = client.get(reverse("admin:nlu_modelversion_reliability", args=[version.pk]))
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.content and b"ECE" in svg.content


def test_a_version_without_the_figures_has_no_diagram(client, admin, tmp_path):
    from django.urls import reverse

    version = ModelVersion.objects.create(status=ModelVersion.Status.READY, artifact_dir=str(tmp_path), report={})
    client.force_login(admin)
    assert client.get(reverse("admin:nlu_modelversion_reliability", args=[version.pk])).status_code == 404


def test_answering_a_message_never_explains_it(visitor, say, active_model, committed, queued, monkeypatch):
    """Explanations are asked for by people, never on the path of a reply."""
    from chatbot.conversations.tasks import reply_to_visitor_message

    monkeypatch.setattr(explanations, "explain_text", lambda *a: pytest.fail("explained on the reply path"))
    message = say(visitor, "where is my order")
    with committed():
        reply_to_visitor_message(message.pk)

    message.refresh_from_db()
    assert message.model_version_id == active_model.pk and Message.objects.filter(reply_to=message).exists()
    assert queued == [] and not Explanation.objects.exists()


def test_the_version_in_service_is_explained_with_the_predictor_already_loaded(
    answered, active_model, pushes, monkeypatch
):
    import inference
    from chatbot.nlu import serving

    monkeypatch.setattr(serving, "_current", None)
    serving.current_model()
    monkeypatch.setattr(explanations, "_predictors", {})
    monkeypatch.setattr(inference.Predictor, "load", classmethod(lambda *a, **k: pytest.fail("a second copy")))
    message = answered()

    tasks.explain_message(message.pk, active_model.pk)

    assert Explanation.objects.get().status == Explanation.Status.READY
