"""The NinjaAPI instance: routers, error handlers and the OpenAPI document."""

import logging

from django.http import Http404, HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from chatbot.api.endpoints import analytics, conversations, intents, model_versions, visitors
from chatbot.api.problems import CONTENT_TYPE, ApiProblem, problem_response

log = logging.getLogger(__name__)


class ChatbotApi(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Error answers are application/problem+json, as the server sends them."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        response["content"] = {CONTENT_TYPE: content["application/json"]}
        return schema


api = ChatbotApi(
    title="Northwind chatbot API",
    version="1",
    description=(
        "Conversations, messages, visitors, intents and model versions. "
        "Authenticate with `Authorization: Bearer <token>` (tokens are made in the admin). "
        "Errors are RFC 9457 problem details with a stable `code`. See docs/api.md."
    ),
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("", conversations.router)
api.add_router("", visitors.router)
api.add_router("", intents.router)
api.add_router("", model_versions.router)
api.add_router("", analytics.router)


@api.exception_handler(ApiProblem)
def _problem(request: HttpRequest, exc: ApiProblem):
    return problem_response(request, exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError):
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", [])],
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors
    ]
    return problem_response(request, 422, "validation_error", "The request is not valid; see errors.", errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError):
    return problem_response(
        request,
        401,
        "not_authenticated",
        "Send a token: Authorization: Bearer <token>.",
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404):
    return problem_response(request, 404, "not_found", "No such resource.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError):
    # ninja raises these for bodies it cannot parse (malformed JSON).
    return problem_response(request, exc.status_code, "bad_request" if exc.status_code == 400 else "error", str(exc))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception):
    log.exception("API call %s %s failed", request.method, request.path)
    return problem_response(request, 500, "internal_error", "Something went wrong on our side; it was logged.")
