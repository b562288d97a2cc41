"""Tokens for each scope and a client that sends one."""

import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chatbot.api import tokens
from chatbot.nlu.models import Intent, ModelVersion, TrainingExample


class ApiClient:
    """Django's test client speaking JSON with a bearer token."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.client = Client()

    def _headers(self, headers: dict | None) -> dict:
        out = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        for name, value in (headers or {}).items():
            out["HTTP_" + name.upper().replace("-", "_")] = value
        return out

    def get(self, path: str, params: dict | None = None, **kw):
        return self.client.get(path, params or {}, **self._headers(kw.get("headers")))

    def send(self, method: str, path: str, body=None, headers: dict | None = None):
        data = json.dumps(body if body is not None else {})
        call = getattr(self.client, method.lower())
        return call(path, data, content_type="application/json", **self._headers(headers))

    def post(self, path: str, body=None, headers: dict | None = None):
        return self.send("POST", path, body, headers)

    def patch(self, path: str, body=None, headers: dict | None = None):
        return self.send("PATCH", path, body, headers)

    def delete(self, path: str, headers: dict | None = None):
        return self.client.delete(path, **self._headers(headers))


def make_token(user, scopes, **kw) -> str:
    return tokens.create_token(name="test", user=user, scopes=scopes, **kw)[1]


@pytest.fixture
def reader(agent) -> ApiClient:
    return ApiClient(make_token(agent, ["read"]))


@pytest.fixture
def writer(agent) -> ApiClient:
    """Acts as `agent` (alice), who may work in the dashboard."""
    return ApiClient(make_token(agent, ["write"]))


@pytest.fixture
def api_admin(admin) -> ApiClient:
    return ApiClient(make_token(admin, ["admin"]))


@pytest.fixture
def expired(agent) -> ApiClient:
    return ApiClient(make_token(agent, ["admin"], expires_at=timezone.now() - timedelta(seconds=1)))


@pytest.fixture
def revoked(agent) -> ApiClient:
    row, token = tokens.create_token(name="old", user=agent, scopes=["admin"])
    tokens.revoke(row.pk)
    return ApiClient(token)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"] and body["title"]
    return body


@pytest.fixture
def world(db, visitor, agent):
    """One of each resource for the endpoints to act on."""
    intent = Intent.objects.create(name="greeting")
    example = TrainingExample.objects.create(intent=intent, text="hello there")
    version = ModelVersion.objects.create(status=ModelVersion.Status.FAILED)
    return {
        "conversation": visitor.conversation.pk,
        "visitor": visitor.conversation.visitor_id,
        "intent": intent.name,
        "example": example.pk,
        "version": version.pk,
        "missing": uuid.uuid4(),
    }
