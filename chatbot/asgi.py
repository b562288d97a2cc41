"""ASGI entry point: HTTP through Django, websockets through Channels.

Websocket origins are checked against ALLOWED_HOSTS plus the configured widget
origins, against cross-site websocket hijacking.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from chatbot.analytics.metrics import WebsocketGauge  # noqa: E402
from chatbot.ops.body_limit import BodyLimit  # noqa: E402
from chatbot.routing import websocket_urlpatterns  # noqa: E402


def allowed_websocket_origins() -> list[str]:
    return [*settings.ALLOWED_HOSTS, *settings.WIDGET_ORIGINS]


application = ProtocolTypeRouter(
    {
        # BodyLimit: a body over the limit is refused before it is read (reliability).
        "http": BodyLimit(django_asgi_app),
        # WebsocketGauge: the open-websockets gauge of /metrics (analytics).
        "websocket": WebsocketGauge(
            OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), allowed_websocket_origins())
        ),
    }
)
