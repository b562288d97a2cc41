"""Pools sized and waiting: the channel layer's Redis pool waits for a free
connection at its cap instead of failing (a mass disconnect failed 7,376
group_discard calls with MaxConnectionsError), and the product's settings use it."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from chatbot.ops.channel_layer import PooledRedisChannelLayer
from chatbot.ops.redis_cache import RedisCache
from tests.conftest import REPO


@pytest.mark.asyncio
async def test_a_burst_of_group_changes_past_the_pool_cap_waits_instead_of_failing(redis_server):
    layer = PooledRedisChannelLayer(hosts=[{"address": redis_server.url, "max_connections": 4, "timeout": 20}])
    channels = [await layer.new_channel() for _ in range(300)]
    await asyncio.gather(*(layer.group_add("conversation.x", name) for name in channels))
    await asyncio.gather(*(layer.group_discard("conversation.x", name) for name in channels))
    await layer.group_send("conversation.x", {"type": "chat.message"})  # nobody left: no error
    await layer.flush()
    await layer.close_pools()


def test_settings_with_redis_use_the_waiting_pool_and_checked_database_connections():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", REDIS_URL="redis://127.0.0.1:1/0", DATABASE_URL="postgres://u@127.0.0.1:1/x",
               REDIS_MAX_CONNECTIONS="700")  # fmt: skip
    script = (
        "import json; from django.conf import settings as s; l = s.CHANNEL_LAYERS['default'];"
        "print(json.dumps({'backend': l['BACKEND'], 'host': {k: v for k, v in l['CONFIG']['hosts'][0].items()},"
        "'check': s.DATABASES['default']['CONN_HEALTH_CHECKS'],"
        "'cache': s.CACHES['default'].get('OPTIONS', {}), 'cache_backend': s.CACHES['default']['BACKEND']}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=REPO, env={**env, "DJANGO_SETTINGS_MODULE": "chatbot.settings"}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    seen = json.loads(out.stdout)
    assert seen["cache_backend"] == "chatbot.ops.redis_cache.RedisCache"
    assert seen["backend"] == "chatbot.ops.channel_layer.PooledRedisChannelLayer"
    assert seen["host"]["max_connections"] == 700 and seen["host"]["health_check_interval"] == 10
    assert seen["check"] is True
    assert seen["cache"] == {"health_check_interval": 10}


def test_the_cache_reuses_one_redis_client_and_it_survives_a_redis_restart(redis_server):
    """Django's own backend builds a redis.Redis per call (a seventh of the chat
    server's CPU under load); ours keeps one per pool, which must still reconnect."""
    cache = RedisCache(redis_server.url, {"OPTIONS": {"health_check_interval": 10}})
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client("key") is client
    cache.set("greeting", "hello", 60)
    assert cache.get("greeting") == "hello"
    redis_server.kill()
    redis_server.start()
    cache.set("greeting", "again", 60)
    assert cache.get("greeting") == "again"
    assert cache._cache.get_client() is client
