"""Database work of websocket consumers on a pool of threads.

Channels' `database_sync_to_async` is thread-sensitive: every consumer of a
server process queues its database calls on one thread, so one slow query (a
conversation row locked for 6 s) stalls every other visitor's auth and
messages. This one runs them on WS_DATABASE_THREADS threads, closing stale
connections before and after each call as Channels does.
"""

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import close_old_connections

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.WS_DATABASE_THREADS, thread_name_prefix="ws-database")
    return _executor


class _DatabaseSyncToAsync(SyncToAsync):
    def thread_handler(self, loop, *args, **kwargs):
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            close_old_connections()


def database_sync_to_async(func):
    """Like channels.db.database_sync_to_async, on a pool of threads."""
    return _DatabaseSyncToAsync(func, thread_sensitive=False, executor=executor())
