"""The chat's HTTP side: the session API, health, and settings that fail early."""

import json
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.test import override_settings

from chatbot.conversations.models import Conversation, Visitor

pytestmark = pytest.mark.django_db


def test_session_api_creates_a_visitor_and_a_conversation(client):
    response = client.post("/api/widget/sessions", data=json.dumps({"page_url": "https://shop.example/p"}),
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 201
    body = response.json()
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert conversation.status == "bot" and conversation.visitor.page_url == "https://shop.example/p"
    assert len(body["token"]) >= 40


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]"])
def test_session_api_refuses_a_bad_body_and_creates_nothing(client, payload):
    response = client.post("/api/widget/sessions", data=payload, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "invalid_json"
    assert not Visitor.objects.exists()


def test_session_api_only_answers_post(client):
    assert client.get("/api/widget/sessions").status_code == 405


@override_settings(CORS_ALLOWED_ORIGINS=["https://shop.example"])
def test_cors_allows_only_configured_widget_origins(client):
    allowed = client.post("/api/widget/sessions", HTTP_ORIGIN="https://shop.example")
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://shop.example"
    refused = client.post("/api/widget/sessions", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_healthz_is_503_without_an_active_model(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] and body["broker"]["ok"] and body["channel_layer"]["ok"]
    assert not body["model"]["ok"]


def test_healthz_is_200_with_everything_up(client, active_model, celery_worker):
    # A worker counts once it has warmed up its queues' models (chatbot/ops/heartbeat.py).
    deadline = time.monotonic() + 60
    response = client.get("/healthz")
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        response = client.get("/healthz")
    assert response.status_code == 200, response.json().get("workers")
    assert response.json()["model"] == {"ok": True, "detail": f"v{active_model.pk}"}


def start_with(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"DEBUG": "0"}, "SECRET_KEY is not set"),
        ({"DEBUG": "maybe"}, "Set DEBUG to 1 or 0"),
        ({"DEBUG": "1", "DATABASE_URL": "nonsense://x"}, "DATABASE_URL is not valid"),
        ({"DEBUG": "1", "REDIS_URL": "http://127.0.0.1:6379"}, "Set REDIS_URL like redis://"),
        ({"DEBUG": "1", "LOG_LEVEL": "loud"}, "Set LOG_LEVEL to DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        (
            {"DEBUG": "1", "DATABASE_URL": "postgres://u@127.0.0.1/x", "DATABASE_POOL_MAX_SIZE": "many"},
            "DATABASE_POOL_MAX_SIZE is not valid",
        ),
        ({"DEBUG": "1", "WIDGET_ORIGINS": "shop.example"}, "Set WIDGET_ORIGINS to a comma list"),
        ({"DEBUG": "1", "INTENT_CONFIDENCE_THRESHOLD": "high"}, "INTENT_CONFIDENCE_THRESHOLD is not valid"),
    ],
)
def test_a_wrong_setting_fails_at_start_with_what_to_set(env, sentence):
    result = start_with(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and sentence in result.stderr


def test_production_settings_start_with_a_secret_key():
    assert start_with(DEBUG="0", SECRET_KEY="x" * 50).returncode == 0


def test_serve_runs_one_scheduler_for_the_nightly_retraining_beside_the_workers(settings, tmp_path):
    from chatbot.celery import app
    from chatbot.conversations.management.commands.serve import worker_commands

    settings.CELERY_BEAT_SCHEDULE_FILENAME = str(tmp_path / "var" / "beat")
    commands = worker_commands()
    assert [c[c.index("-Q") + 1] for c in commands if "worker" in c] == ["inference", "default", "training"]
    beats = [c for c in commands if "beat" in c]
    assert len(beats) == 1 and beats[0][beats[0].index("--schedule") + 1] == str(tmp_path / "var" / "beat")
    assert (tmp_path / "var").is_dir()
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks  # the schedule names a task that exists
    settings.CELERY_BEAT_SCHEDULE = {}  # NIGHTLY_RETRAIN=0
    assert not [c for c in worker_commands() if "beat" in c]
