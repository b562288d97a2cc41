"""Every endpoint's door: no token, a bad one, a revoked or expired one, the
wrong scope; the rate limit per token; the call log; tokens made in the admin."""

import pytest
from django.test import override_settings

from chatbot.api.models import ApiCall, ApiToken
from tests.api.conftest import ApiClient, assert_problem, make_token

pytestmark = pytest.mark.django_db

# (method, path, scope it needs)
ENDPOINTS = [
    ("GET", "/api/v1/conversations", "read"),
    ("GET", "/api/v1/conversations/{conversation}", "read"),
    ("POST", "/api/v1/conversations/{conversation}/messages", "write"),
    ("POST", "/api/v1/conversations/{conversation}/notes", "write"),
    ("POST", "/api/v1/conversations/{conversation}/handoff", "write"),
    ("POST", "/api/v1/conversations/{conversation}/assign", "write"),
    ("POST", "/api/v1/conversations/{conversation}/close", "write"),
    ("GET", "/api/v1/visitors/{visitor}", "read"),
    ("PATCH", "/api/v1/visitors/{visitor}", "write"),
    ("GET", "/api/v1/intents", "read"),
    ("POST", "/api/v1/intents", "admin"),
    ("GET", "/api/v1/intents/{intent}", "read"),
    ("PATCH", "/api/v1/intents/{intent}", "admin"),
    ("DELETE", "/api/v1/intents/{intent}", "admin"),
    ("GET", "/api/v1/intents/{intent}/examples", "read"),
    ("POST", "/api/v1/intents/{intent}/examples", "admin"),
    ("DELETE", "/api/v1/examples/{example}", "admin"),
    ("GET", "/api/v1/model-versions", "read"),
    ("GET", "/api/v1/model-versions/{version}", "read"),
    ("POST", "/api/v1/model-versions", "admin"),
    ("POST", "/api/v1/model-versions/{version}/activate", "admin"),
    ("POST", "/api/v1/model-versions/{version}/rollback", "admin"),
    ("GET", "/api/v1/analytics/summary", "read"),
]
LOWER_SCOPE = {"write": "read", "admin": "write"}
IDS = [f"{m} {p}" for m, p, _ in ENDPOINTS]


def call(client: ApiClient, method: str, path: str, world: dict):
    path = path.format(**world)
    if method == "GET":
        return client.get(path)
    if method == "DELETE":
        return client.delete(path)
    return client.send(method, path, {})


def test_every_operation_in_the_schema_is_covered_here(world):
    schema = ApiClient(None).get("/api/v1/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    covered = {
        (
            m,
            p.replace("{conversation}", "{conversation_id}")
            .replace("{visitor}", "{visitor_id}")
            .replace("{intent}", "{name}")
            .replace("{example}", "{example_id}")
            .replace("{version}", "{version_id}"),
        )
        for m, p, _ in ENDPOINTS
    }
    assert documented == covered


@pytest.mark.parametrize("method,path,scope", ENDPOINTS, ids=IDS)
def test_no_token_is_refused(world, method, path, scope):
    response = call(ApiClient(None), method, path, world)
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method,path,scope", ENDPOINTS, ids=IDS)
def test_unknown_token_is_refused(world, method, path, scope):
    assert_problem(call(ApiClient("nwc_deadbeef_nope"), method, path, world), 401, "invalid_token")


@pytest.mark.parametrize("method,path,scope", ENDPOINTS, ids=IDS)
def test_revoked_token_is_refused(world, revoked, method, path, scope):
    assert_problem(call(revoked, method, path, world), 401, "token_revoked")


@pytest.mark.parametrize("method,path,scope", ENDPOINTS, ids=IDS)
def test_expired_token_is_refused(world, expired, method, path, scope):
    assert_problem(call(expired, method, path, world), 401, "token_expired")


@pytest.mark.parametrize(
    "method,path,scope",
    [e for e in ENDPOINTS if e[2] != "read"],
    ids=[i for i, e in zip(IDS, ENDPOINTS, strict=True) if e[2] != "read"],
)
def test_a_lower_scope_is_refused(world, agent, method, path, scope):
    client = ApiClient(make_token(agent, [LOWER_SCOPE[scope]]))
    assert_problem(call(client, method, path, world), 403, "insufficient_scope")


@pytest.mark.parametrize("method,path,scope", ENDPOINTS, ids=IDS)
def test_the_right_scope_gets_past_the_door(world, admin, method, path, scope):
    """Whatever the endpoint then says (a refused action is fine), it is not an auth error."""
    client = ApiClient(make_token(admin, [scope]))
    response = call(client, method, path, world)
    assert response.status_code not in (401, 403), response.content


def test_a_wrong_secret_with_a_real_prefix_is_refused(reader):
    forged = reader.token[:-4] + "AAAA"
    assert_problem(ApiClient(forged).get("/api/v1/intents"), 401, "invalid_token")


def test_only_the_hash_is_stored(reader):
    row = ApiToken.objects.get()
    assert reader.token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    assert reader.get("/api/v1/intents").status_code == 200


@override_settings(API_RATE_LIMIT="3/m")
def test_rate_limit_is_per_token(reader, agent):
    for _ in range(3):
        assert reader.get("/api/v1/intents").status_code == 200
    response = reader.get("/api/v1/intents")
    assert_problem(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
    other = ApiClient(make_token(agent, ["read"]))
    assert other.get("/api/v1/intents").status_code == 200


def test_every_call_is_logged_with_token_and_outcome_not_the_body(writer, world):
    writer.post(f"/api/v1/conversations/{world['conversation']}/notes", {"text": "secret note body"})
    writer.get("/api/v1/nowhere")
    ApiClient(None).get("/api/v1/intents")
    calls = list(ApiCall.objects.order_by("id"))
    token = ApiToken.objects.get()
    assert [(c.token_id, c.method, c.status, c.code) for c in calls] == [
        (token.pk, "POST", 201, ""),
        (None, "GET", 404, "not_found"),
        (None, "GET", 401, "not_authenticated"),
    ]
    assert all(c.duration_ms >= 0 for c in calls)
    assert not any("secret note body" in str(c.__dict__) for c in calls)


def test_last_used_time_is_recorded(reader):
    assert ApiToken.objects.get().last_used_at is None
    reader.get("/api/v1/intents")
    assert ApiToken.objects.get().last_used_at is not None


def test_admin_creates_a_token_and_shows_it_once(client, admin, agent):
    client.force_login(admin)
    response = client.post(
        "/admin/api/apitoken/add/",
        {"name": "CRM", "user": agent.pk, "scopes": ["read", "write"], "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    token = next(w for m in shown for w in m.split() if w.startswith("nwc_"))
    row = ApiToken.objects.get(name="CRM")
    assert row.scopes == ["read", "write"] and row.created_by == admin
    assert ApiClient(token).get("/api/v1/intents").status_code == 200
    # Never again: the change page does not show it.
    page = client.get(f"/admin/api/apitoken/{row.pk}/change/").content.decode()
    assert token not in page


def test_admin_revokes_a_token(client, admin, reader):
    client.force_login(admin)
    row = ApiToken.objects.get()
    client.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert_problem(reader.get("/api/v1/intents"), 401, "token_revoked")


def test_old_call_log_rows_and_idempotency_keys_are_purged(writer, world, settings):
    from datetime import timedelta

    from django.utils import timezone

    from chatbot.api.models import IdempotentRequest
    from chatbot.api.tasks import purge_old_records

    settings.API_CALL_LOG_DAYS = 30
    url = f"/api/v1/conversations/{world['conversation']}/notes"
    for key in ("old", "new"):
        writer.post(url, {"text": key}, headers={"Idempotency-Key": key})
    IdempotentRequest.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    ApiCall.objects.filter(pk=ApiCall.objects.order_by("id").first().pk).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    purge_old_records()
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new"]
    assert ApiCall.objects.count() == 1
