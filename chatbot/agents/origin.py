"""The agents' socket answers pages of this server only.

The widget's socket (/ws/chat/) is opened from the shops' pages, so it accepts
WIDGET_ORIGINS; the dashboard's socket carries every live chat and is opened with
the agent's session cookie, so a script on any other origin (a shop page, another
port or scheme of the same host) must not open it. "This server" is the origin the
browser reached it at: the request's Host (one of ALLOWED_HOSTS) with its scheme,
as Django's CSRF check sees it.
"""

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _scheme(scope: dict) -> str:
    """http or https, as the browser used it. Behind the proxy (docs/security.md)
    uvicorn sets wss from X-Forwarded-Proto; the same header Django trusts for HTTP
    (SECURE_PROXY_SSL_HEADER) counts here too."""
    if scope.get("scheme") == "wss":
        return "https"
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        header = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        value = _header(scope, header)
        if value is not None and value.split(",", 1)[0].strip() == secure_value:
            return "https"
    return "http"


def _allowed_hosts() -> list[str]:
    # As Django's HttpRequest.get_host: in debug mode an empty list allows loopback.
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


def is_own_origin(scope: dict) -> bool:
    """The Origin header names exactly this server: scheme, host and port."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    if not origin or not host:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return False
    return origin.strip().lower() == f"{_scheme(scope)}://{host.strip().lower()}"


class OwnOriginOnly:
    """ASGI wrapper: refuse the websocket handshake unless is_own_origin."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not is_own_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
