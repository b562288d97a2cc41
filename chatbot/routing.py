from django.urls import path

from chatbot.agents.consumers import AgentConsumer
from chatbot.agents.origin import OwnOriginOnly
from chatbot.conversations.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    # The dashboard's socket: only from this server's own pages, never a widget site.
    path("ws/agent/", OwnOriginOnly(AgentConsumer.as_asgi())),
]
