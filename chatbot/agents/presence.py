"""Who is online: an agent is, while one of their dashboard tabs is connected.

One row per open socket (so several tabs and several server processes count
right); the dashboard sends a heartbeat every HEARTBEAT_S, and a row whose
heartbeat is older than TTL_S (its server died) no longer counts.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from chatbot import realtime
from chatbot.agents.models import AgentConnection
from chatbot.conversations import events

HEARTBEAT_S = 20


def ttl_s() -> int:
    return settings.AGENT_PRESENCE_TTL_S


def _fresh():
    return AgentConnection.objects.filter(last_seen_at__gte=timezone.now() - timedelta(seconds=ttl_s()))


def online_agents() -> list:
    ids = _fresh().values_list("agent_id", flat=True)
    return list(get_user_model().objects.filter(pk__in=ids).order_by("first_name", "username"))


def any_agent_online() -> bool:
    return _fresh().exists()


def presence_event() -> dict:
    return events.presence_event(online_agents())


def connect(agent_id: int, channel_name: str) -> None:
    now = timezone.now()
    # Rows left behind by a server that died long ago.
    AgentConnection.objects.filter(last_seen_at__lt=now - timedelta(seconds=ttl_s() * 10)).delete()
    AgentConnection.objects.update_or_create(
        channel_name=channel_name, defaults={"agent_id": agent_id, "last_seen_at": now}
    )
    realtime.push(realtime.AGENTS_GROUP, presence_event())


def heartbeat(agent_id: int, channel_name: str) -> None:
    updated = AgentConnection.objects.filter(channel_name=channel_name).update(last_seen_at=timezone.now())
    if not updated:  # expired and cleaned up while the socket lived on
        connect(agent_id, channel_name)


def disconnect(channel_name: str) -> None:
    AgentConnection.objects.filter(channel_name=channel_name).delete()
    realtime.push(realtime.AGENTS_GROUP, presence_event())
