"""HTTP endpoints of the chat: the widget's session API, health, the demo page."""

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from csp.decorators import csp_exempt
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chatbot.conversations import recovery, services
from chatbot.nlu import serving
from chatbot.ops import health

log = logging.getLogger(__name__)


SESSION_REFUSALS = {
    "address": "Too many new chat sessions from your network; try again in a moment.",
    "everyone": "The chat is taking too many new sessions right now; try again in a moment.",
}


@csrf_exempt  # called cross-site by the widget; it carries no cookie and creates only a new, empty session
@require_POST
def create_session(request: HttpRequest) -> JsonResponse:
    # REMOTE_ADDR: the client as uvicorn reports it (behind the proxy, from X-Forwarded-For).
    refusal = services.check_new_session(request.META.get("REMOTE_ADDR"))
    if refusal is not None:
        response = JsonResponse(
            {"error": "rate_limited", "message": SESSION_REFUSALS[refusal.scope], "retry_after": refusal.retry_after},
            status=429,
        )
        response["Retry-After"] = str(refusal.retry_after)
        return response
    body = {}
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            return JsonResponse({"error": "invalid_json", "message": "The body is not valid JSON."}, status=400)
        if not isinstance(body, dict):
            return JsonResponse({"error": "invalid_json", "message": "The body must be a JSON object."}, status=400)
    page_url = body.get("page_url") if isinstance(body.get("page_url"), str) else ""
    token, conversation = services.start_session(page_url=page_url, user_agent=request.headers.get("User-Agent", ""))
    return JsonResponse({"token": token, "conversation_id": str(conversation.pk)}, status=201)


def _check(name: str, probe) -> tuple[bool, str]:
    try:
        return True, probe() or "ok"
    except Exception as exc:  # healthz reports every failure instead of raising
        log.warning("health check %s failed: %s", name, exc)
        return False, f"{type(exc).__name__}: {exc}"[:300]


def _database() -> str:
    if connection.vendor == "postgresql":
        # A new connection, not one from the pool: the pool waits (up to 10 s) for
        # the database to come back, which would hide a restart from /healthz.
        import psycopg

        with psycopg.connect(**{**connection.get_connection_params(), "connect_timeout": 2}) as direct:
            direct.execute("SELECT 1")
        return connection.vendor
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


def _broker() -> str:
    from chatbot.celery import app

    if settings.EMBEDDED:
        return "in-process"
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "redis"


def _channel_layer() -> str:
    layer = get_channel_layer()
    async_to_sync(layer.send)("healthz.probe", {"type": "healthz"})
    async_to_sync(layer.receive)("healthz.probe")
    return type(layer).__name__


def _model() -> str:
    row = serving.active_version_row()
    if row is None:
        raise serving.NoActiveModel("no active intent model")
    return f"v{row['id']}"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 or 503 with the status for anyone (load balancers, uptime checks); each
    check's detail (versions, exception text) only for staff and the host itself."""
    checks = {
        name: _check(name, probe)
        for name, probe in (
            ("database", _database),
            ("broker", _broker),
            ("channel_layer", _channel_layer),
            ("model", _model),
            *health.CHECKS,
            ("unanswered", recovery.unanswered),
        )
    }
    healthy = all(ok for ok, _ in checks.values())
    body = {"status": "ok" if healthy else "unavailable"}
    if health.may_see_details(request):
        body.update({name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()})
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
@csp_exempt()  # it stands in for a customer's page, which has its own policy (docs/security.md)
def demo_page(request: HttpRequest):
    """A customer's page, embedding the widget exactly as the snippet in docs/widget.md."""
    return render(request, "demo/index.html", {"server": request.build_absolute_uri("/").rstrip("/")})
