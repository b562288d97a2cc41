"""Idempotency-Key on POSTs that create something: the first request runs and its
answer is stored in the same transaction; a retry with the same key gets that
answer again instead of creating a second thing.

The stored row is inserted before the action runs: a concurrent retry waits on
the unique (token, key) index until the first commits, then replays it. An
action that fails rolls the row back with everything else, so a retry runs it
afresh.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Status

from chatbot.api.models import IdempotentRequest
from chatbot.api.problems import ApiProblem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def run(request: HttpRequest, action: Callable[[], tuple[int, Any]]) -> Status:
    """The answer to `action` (which returns status and a JSON-able body), run once per Idempotency-Key."""
    return Status(*_run(request, action))


def _run(request: HttpRequest, action: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
    key = request.headers.get(HEADER)
    if key is None:
        with transaction.atomic():
            return action()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiProblem(400, "invalid_idempotency_key", f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.")
    fingerprint = _fingerprint(request)
    try:
        with transaction.atomic():
            row = IdempotentRequest.objects.create(token=request.api_token, key=key, fingerprint=fingerprint)
            status, body = action()
            # Stored as the client will see it (dates as strings), so a replay is byte for byte the same.
            row.status, row.response = status, json.loads(json.dumps(body, default=_json_default))
            row.save(update_fields=["status", "response"])
            return status, row.response
    except IntegrityError:
        existing = IdempotentRequest.objects.filter(token=request.api_token, key=key).first()
        if existing is None:
            raise
    if existing.fingerprint != fingerprint:
        raise ApiProblem(
            422, "idempotency_key_reused", f"This {HEADER} was already used for a different request."
        ) from None
    if existing.status is None:
        raise ApiProblem(409, "idempotency_in_progress", "The first request with this key is still running.")
    return existing.status, existing.response


def _json_default(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
