from django.urls import path

from chatbot.agents.consumers import AgentConsumer
from chatbot.conversations.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    path("ws/agent/", AgentConsumer.as_asgi()),
]
