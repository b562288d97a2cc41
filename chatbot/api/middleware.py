"""Under /api/v1/: every call logged (token, method, path, status, code, time;
never the body), every error in the problem shape, and the server time in a
Server-Timing header."""

import logging
import time

from django.conf import settings
from django.http import HttpRequest

from chatbot.api.models import ApiCall
from chatbot.api.problems import as_problem

log = logging.getLogger(__name__)

PREFIX = "/api/v1/"


class ApiCallLogMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        response = as_problem(request, self.get_response(request))
        duration_ms = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = f"app;dur={duration_ms:.2f}"
        if settings.API_CALL_LOG:
            token = getattr(request, "api_token", None)
            try:
                ApiCall.objects.create(
                    token_id=token.pk if token is not None else None,
                    method=request.method[:10],
                    path=request.path[:500],
                    status=response.status_code,
                    code=getattr(request, "api_problem_code", "")[:50],
                    duration_ms=round(duration_ms, 2),
                )
            except Exception:  # the answer matters more than its log line
                log.exception("could not log API call %s %s", request.method, request.path)
        return response
