"""The Redis channel layer with a pool that waits instead of failing.

channels-redis builds a plain redis-py pool, capped at 100 connections in
redis-py 8, which raises MaxConnectionsError at the cap: a mass disconnect then
fails group_discard calls (leaving memberships behind for the group expiry) and
can kill the shared receive loop. A BlockingConnectionPool waits up to
`timeout` seconds for a connection instead; `health_check_interval` pings
connections idle for longer than that before use, so after a Redis restart a
stale connection is replaced instead of failing a frame, and a command that
meets a dead connection is retried on a fresh one.
"""

from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


class PooledRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        # A pooled connection that died with a Redis restart is reconnected and the
        # command retried (redis-py's asyncio default is no retry at all).
        host.setdefault("retry", Retry(ExponentialBackoff(cap=1.0, base=0.05), 3))
        return aioredis.BlockingConnectionPool.from_url(address, **host)
