"""The one way server code pushes events to websockets: through the channel
layer, after the surrounding transaction commits.

Groups: `conversation.<uuid>` for everyone watching one conversation (the
visitor's sockets and agents who opened it), `agents` for the agents' queue.
"""

import asyncio
import logging
import os
import threading
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

AGENTS_GROUP = "agents"


def conversation_group(conversation_id: Any) -> str:
    return f"conversation.{conversation_id}"


def agent_group(user_id: int) -> str:
    """One user's dashboard sockets (told to re-check their login)."""
    return f"agent.{user_id}"


def push(group: str, event: dict) -> None:
    """Send `event` to `group` once the current transaction (if any) commits.

    The caller does not wait for the send: events go to this process's
    publisher, which delivers them in order.
    """
    transaction.on_commit(lambda: _publisher().publish(group, event))


class _Publisher:
    """One event loop thread per process that drains a queue of events into
    the channel layer, in order.

    Calling the layer through async_to_sync from a worker thread builds a new
    event loop (and, with Redis, a new connection) for every event: about 7 ms
    each. Here the loop and its connection live as long as the process.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="channel-layer-publisher", daemon=True)
        self.thread.start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.loop.create_task(self._drain())
        self.ready.set()
        self.loop.run_forever()

    async def _drain(self) -> None:
        while True:
            group, event = await self.queue.get()
            try:
                # Looked up per event (a dict lookup): the layer the consumers use now.
                await get_channel_layer().group_send(group, event)
            except Exception:  # a lost push is recovered by history on reconnect
                log.exception("push to %s failed", group)

    def publish(self, group: str, event: dict) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, event))


_publisher_lock = threading.Lock()
_publisher_instance: _Publisher | None = None
_publisher_pid: int | None = None


def _publisher() -> _Publisher:
    global _publisher_instance, _publisher_pid
    # A forked child (prefork pool) must not reuse its parent's thread.
    if _publisher_instance is None or _publisher_pid != os.getpid():
        with _publisher_lock:
            if _publisher_instance is None or _publisher_pid != os.getpid():
                _publisher_instance = _Publisher()
                _publisher_pid = os.getpid()
    return _publisher_instance


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
