"""Websocket consumers that outlive a Redis or PostgreSQL fault.

Channels runs a consumer as one loop over two sources, the client and the
channel layer; a Redis error in the layer's receive ends that loop and drops
the socket (1006). Here the layer's receive retries with backoff instead, and
once Redis answers again the consumer is told (`on_channel_layer_recovered`),
so it can rejoin its groups, which a Redis restarted empty has forgotten.
"""

import asyncio
import logging

from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch


def _transient_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    return (
        OperationalError,
        InterfaceError,
        kombu.exceptions.OperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    )


# Errors that a restart of PostgreSQL or Redis raises and that a retry outlives.
TRANSIENT_ERRORS = _transient_errors()


log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


class FaultTolerantConsumer:
    """Mix in before AsyncWebsocketConsumer."""

    async def __call__(self, scope, receive, send):
        # channels.consumer.AsyncConsumer.__call__, with a layer receive that retries.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            sources.append(self._receive_from_layer)
        try:
            await await_many_dispatch(sources, self.dispatch)
        except StopConsumer:
            pass

    async def _receive_from_layer(self) -> dict:
        delay, failed = RETRY_FIRST_S, False
        while True:
            try:
                if failed:
                    # Raises while Redis is still down; then rejoin before waiting again.
                    await self.on_channel_layer_recovered()
                    log.info("channel layer reachable again; rejoined")
                    delay, failed = RETRY_FIRST_S, False
                return await self.channel_layer.receive(self.channel_name)
            except TRANSIENT_ERRORS as exc:
                if not failed:
                    log.warning("channel layer unreachable (%s); retrying", exc)
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def on_channel_layer_recovered(self) -> None:
        """Rejoin groups and catch the client up; the consumer says how."""
