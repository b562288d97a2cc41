"""Bearer-token authentication for the endpoints: token, scope, then the
per-token rate limit (django-ratelimit, on the shared cache)."""

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from ninja.security import HttpBearer

from chatbot.api import tokens
from chatbot.api.models import ApiToken
from chatbot.api.problems import ApiProblem


def _token_key(group: str, request: HttpRequest) -> str:
    return str(request.api_token.pk)


class TokenAuth(HttpBearer):
    """Accepts a valid token holding `scope` (or a higher one)."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        row = tokens.verify(token)
        request.api_token = row
        if not tokens.has_scope(row, self.scope):
            raise ApiProblem(403, "insufficient_scope", f"This call needs a token with the {self.scope!r} scope.")
        usage = get_usage(request, group="api-token", key=_token_key, rate=settings.API_RATE_LIMIT, increment=True)
        if usage is not None and usage["should_limit"]:
            raise ApiProblem(
                429,
                "rate_limited",
                f"This token made more than {settings.API_RATE_LIMIT} calls; wait and try again.",
                headers={"Retry-After": str(max(1, int(usage["time_left"])))},
            )
        return row


read = TokenAuth(ApiToken.Scope.READ)
write = TokenAuth(ApiToken.Scope.WRITE)
admin = TokenAuth(ApiToken.Scope.ADMIN)
