"""Errors as RFC 9457 problem details: one JSON shape for every error the API
answers, with a stable `code` for programs and a `detail` for people."""

import json
import logging
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised anywhere below an endpoint; answered as a problem document."""

    def __init__(
        self, status: int, code: str, detail: str, *, errors: list | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_body(status: int, code: str, detail: str, instance: str = "", errors: list | None = None) -> dict:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    request: HttpRequest,
    status: int,
    code: str,
    detail: str,
    *,
    errors: list | None = None,
    headers: dict | None = None,
) -> HttpResponse:
    # The call log records the code (see middleware.py).
    request.api_problem_code = code
    response = HttpResponse(
        json.dumps(problem_body(status, code, detail, request.path, errors)), status=status, content_type=CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# Django's own answers under /api/v1/ (an unknown path, a wrong method) in the same shape.
STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


def as_problem(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """An error answer that is not yet a problem document becomes one."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith(CONTENT_TYPE):
        return response
    status = response.status_code
    code = STATUS_CODES.get(status, "error")
    detail = {404: "No such resource.", 405: f"{request.method} is not allowed here."}.get(
        status, HTTPStatus(status).phrase
    )
    converted = problem_response(request, status, code, detail)
    if "Allow" in response:
        converted["Allow"] = response["Allow"]
    return converted
