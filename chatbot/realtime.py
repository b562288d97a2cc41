"""The one way server code pushes events to websockets: through the channel
layer, after the surrounding transaction commits.

Groups: `conversation.<uuid>` for everyone watching one conversation (the
visitor's sockets and agents who opened it), `agents` for the agents' queue.
"""

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

AGENTS_GROUP = "agents"


def conversation_group(conversation_id: Any) -> str:
    return f"conversation.{conversation_id}"


def push(group: str, event: dict) -> None:
    """Send `event` to `group` once the current transaction (if any) commits."""

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(group, event)
        except Exception:  # a lost push is recovered by history on reconnect
            log.exception("push to %s failed", group)

    transaction.on_commit(send)


class EmbeddedChannelLayer(InMemoryChannelLayer):
    """In-memory layer for the single-process setup, safe to publish to from
    the embedded Celery worker's thread.

    The stock in-memory layer's queues belong to the server's event loop; a
    send from another thread's loop would not wake the waiting consumer, so
    sends from a foreign loop are handed to the server's loop.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._home_loop: asyncio.AbstractEventLoop | None = None

    def _foreign_home(self) -> asyncio.AbstractEventLoop | None:
        loop = asyncio.get_running_loop()
        home = self._home_loop
        if home is None or home is loop or home.is_closed() or not home.is_running():
            return None
        return home

    async def receive(self, channel: str) -> dict:
        self._home_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    async def send(self, channel: str, message: dict) -> None:
        home = self._foreign_home()
        if home is None:
            return await super().send(channel, message)
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(InMemoryChannelLayer.send(self, channel, message), home)
        )

    async def group_send(self, group: str, message: dict) -> None:
        home = self._foreign_home()
        if home is None:
            return await super().group_send(group, message)
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(InMemoryChannelLayer.group_send(self, group, message), home)
        )
