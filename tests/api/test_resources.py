"""Visitors, intents and examples, model versions through the API."""

import pytest
from django.utils import timezone

from chatbot.api.models import VisitorAttributes
from chatbot.conversations.models import Visitor
from chatbot.nlu.models import Intent, ModelVersion, TrainingExample
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


# --- Visitors -----------------------------------------------------------------------


def test_visitor_update_merges_attributes_and_null_removes_one(writer, visitor):
    url = f"/api/v1/visitors/{visitor.conversation.visitor_id}"
    first = writer.patch(url, {"name": "Ada", "attributes": {"plan": "pro", "customer_id": 42}})
    assert first.status_code == 200
    assert first.json()["attributes"] == {"plan": "pro", "customer_id": 42}
    second = writer.patch(url, {"email": "ada@example.com", "attributes": {"plan": None, "vip": True}}).json()
    assert second["name"] == "Ada" and second["email"] == "ada@example.com"
    assert second["attributes"] == {"customer_id": 42, "vip": True}
    assert writer.get(url).json()["attributes"] == {"customer_id": 42, "vip": True}


@pytest.mark.parametrize(
    "body,code",
    [
        ({"email": "not-an-email"}, "invalid_email"),
        ({"name": "x" * 201}, "validation_error"),
        ({"attributes": {f"k{i}": i for i in range(51)}}, "validation_error"),
        ({"attributes": {"nested": {"a": 1}}}, "validation_error"),
        ({"attributes": {"k": "v" * 1001}}, "validation_error"),
    ],
)
def test_bad_visitor_update_changes_nothing(writer, visitor, body, code):
    url = f"/api/v1/visitors/{visitor.conversation.visitor_id}"
    assert_problem(writer.patch(url, {"name": "kept?", **body}), 422, code)
    stored = Visitor.objects.get(pk=visitor.conversation.visitor_id)
    assert stored.name == "" and stored.email == "" and not VisitorAttributes.objects.exists()


def test_missing_visitor_is_a_404(reader):
    assert_problem(reader.get("/api/v1/visitors/999999"), 404, "not_found")


# --- Intents and examples ------------------------------------------------------------


def test_intent_crud(api_admin):
    created = api_admin.post("/api/v1/intents", {"name": "refund", "description": "money back"})
    assert created.status_code == 201
    assert_problem(api_admin.post("/api/v1/intents", {"name": "refund"}), 409, "intent_exists")
    assert_problem(api_admin.post("/api/v1/intents", {"name": "no spaces"}), 422, "validation_error")
    assert api_admin.patch("/api/v1/intents/refund", {"handoff": True}).json()["handoff"] is True
    assert [i["name"] for i in api_admin.get("/api/v1/intents").json()] == ["refund"]
    assert api_admin.delete("/api/v1/intents/refund").status_code == 204
    assert_problem(api_admin.get("/api/v1/intents/refund"), 404, "not_found")


def test_examples_are_masked_and_checked_like_the_admin_import(api_admin):
    Intent.objects.create(name="order_status")
    Intent.objects.create(name="greeting")
    url = "/api/v1/intents/order_status/examples"
    response = api_admin.post(url, {"text": "where  is order NW-123456, mail me at ada@example.com"})
    assert response.status_code == 201
    assert response.json()["text"] == "where is order [order_id], mail me at [email]"
    assert_problem(api_admin.post(url, {"text": "where is order NW-654321, mail me at bob@example.com"}), 409,
                   "duplicate_example")  # fmt: skip
    taken = api_admin.post(
        "/api/v1/intents/greeting/examples", {"text": "where is order [order_id], mail me at [email]"}
    )
    assert_problem(taken, 422, "invalid_example")
    assert_problem(api_admin.post(url, {"text": "   "}), 422, "invalid_example")
    assert TrainingExample.objects.count() == 1
    listed = api_admin.get(url).json()
    assert [e["text"] for e in listed] == ["where is order [order_id], mail me at [email]"]
    assert api_admin.delete(f"/api/v1/examples/{listed[0]['id']}").status_code == 204
    assert_problem(api_admin.delete(f"/api/v1/examples/{listed[0]['id']}"), 404, "not_found")


def test_a_retried_example_post_creates_one(api_admin):
    Intent.objects.create(name="greeting")
    key = {"Idempotency-Key": "ex-1"}
    for _ in range(2):
        assert api_admin.post("/api/v1/intents/greeting/examples", {"text": "hi"}, headers=key).status_code == 201
    assert TrainingExample.objects.count() == 1


# --- Model versions --------------------------------------------------------------------


def report(macro_f1: float) -> dict:
    per = {"a": {"precision": macro_f1, "recall": macro_f1, "f1": macro_f1, "support": 20}}
    return {"accuracy": macro_f1, "macro_f1": macro_f1, "per_intent": per, "holdout": []}


def test_request_training_once_at_a_time(api_admin, django_capture_on_commit_callbacks, monkeypatch):
    from chatbot.nlu import tasks

    started = []
    monkeypatch.setattr(tasks.train_model_version, "delay", started.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_admin.post("/api/v1/model-versions", {"mode": "fast"})
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert started == [response.json()["id"]]
    assert_problem(api_admin.post("/api/v1/model-versions", {}), 409, "training_refused")
    assert_problem(api_admin.post("/api/v1/model-versions", {"mode": "huge"}), 422, "validation_error")
    assert [v["id"] for v in api_admin.get("/api/v1/model-versions").json()] == [response.json()["id"]]


def test_activation_keeps_the_regression_guard_and_rollback_works(api_admin, demo_model_dir):
    serving = ModelVersion.objects.create(
        status="ready", artifact_dir=str(demo_model_dir), is_active=True, activated_at=timezone.now(),
        report=report(0.9),
    )  # fmt: skip
    worse = ModelVersion.objects.create(
        status="ready", artifact_dir=str(demo_model_dir), report=report(0.7),
        baseline_version=serving, baseline_report=report(0.9),
    )  # fmt: skip
    url = f"/api/v1/model-versions/{worse.pk}"
    body = assert_problem(api_admin.post(f"{url}/activate", {}), 409, "activation_refused")
    assert "worse" in body["detail"]
    assert ModelVersion.objects.get(is_active=True) == serving
    forced = api_admin.post(f"{url}/activate", {"force": True})
    assert forced.status_code == 200 and forced.json()["is_active"] and "Forced" in forced.json()["activation_note"]
    back = api_admin.post(f"/api/v1/model-versions/{serving.pk}/rollback", {})
    assert back.status_code == 200 and back.json()["is_active"]
    assert_problem(api_admin.post(f"/api/v1/model-versions/{serving.pk}/rollback", {}), 409, "rollback_refused")
    assert_problem(api_admin.post("/api/v1/model-versions/999999/activate", {}), 404, "not_found")
