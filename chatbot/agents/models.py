"""What the agent dashboard stores: canned responses and who is connected."""

from django.conf import settings
from django.db import models


class CannedResponse(models.Model):
    """A saved reply an agent inserts by typing "/" and its shortcut."""

    shortcut = models.SlugField(max_length=40, unique=True, help_text='Typed after "/" in the reply box.')
    title = models.CharField(max_length=100)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut"]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class AgentConnection(models.Model):
    """One open dashboard socket. An agent is online while one of theirs has a
    fresh heartbeat; rows of a crashed server simply go stale."""

    channel_name = models.CharField(max_length=200, unique=True)
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.agent} on {self.channel_name}"
