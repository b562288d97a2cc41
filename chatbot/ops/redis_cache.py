"""Django's Redis cache, with one redis-py client per connection pool.

Django's RedisCacheClient builds a new `redis.Redis` for every cache call, and
redis-py 8 fills a dict of response callbacks each time: about a seventh of the
chat server's CPU under load went there (the abuse limits ask the cache several
times per frame). A `redis.Redis` is thread-safe and holds no connection of its
own (it borrows one from the pool per command), so one per pool is enough.
"""

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            # Two threads may both build one at first; either serves.
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """settings.CACHES' backend where REDIS_URL is set."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def pipeline(self):
        """A redis-py pipeline (no MULTI) on the server the cache writes to: several
        commands in one round trip. Keys go through `make_and_validate_key`; integers
        are stored as Redis integers, as the cache itself stores them."""
        return self._cache.get_client(write=True).pipeline(transaction=False)
