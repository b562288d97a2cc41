"""Rows that every message needs and staff rarely change, kept in each process's
memory and checked against a version number in the shared cache.

Every change (signals on the models, or `changed()` after a bulk update) writes a
new number; a process that sees another number than the one its copy was read
under reads again. A number missing from the cache (Redis came back empty) counts
as a change. One cache GET per use instead of the queries.
"""

import threading
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save


class VersionedCache:
    def __init__(self, name: str) -> None:
        self.key = f"versioned:{name}:version"
        self._lock = threading.Lock()
        self._version: str | None = None
        self._values: dict = {}

    def get(self, key, load: Callable, *, keep_none: bool = False):
        """The value of `key`: this process's copy while the version holds, else `load()`.
        A None from load is kept only with keep_none (a row that may appear without a
        signal, such as a bulk-created intent, must be asked for again)."""
        version = cache.get(self.key)
        if version is None:
            version = self.changed()
        with self._lock:
            if version != self._version:
                self._values.clear()
                self._version = version
            if key in self._values:
                return self._values[key]
        value = load()
        if value is not None or keep_none:
            with self._lock:
                if self._version == version:  # read under the number it is kept under
                    self._values[key] = value
        return value

    def changed(self, **_signal_kwargs) -> str:
        """A new version number: every process reads again."""
        version = uuid.uuid4().hex
        cache.set(self.key, version, timeout=None)
        return version

    def changed_now_and_after_commit(self, **_signal_kwargs) -> None:
        # Now, for this transaction's own reads; again after the commit, so that a
        # process that read the old rows under the first number reads the new ones.
        self.changed()
        transaction.on_commit(self.changed, robust=True)

    def watch(self, *models, m2m=()) -> None:
        """Change the version whenever one of `models` (classes or "app.Model") is
        saved or deleted, or a relation in `m2m` (through models) changes."""
        for model in models:
            uid = f"{self.key}:{model}"
            post_save.connect(self.changed_now_and_after_commit, sender=model, dispatch_uid=f"{uid}:saved", weak=False)
            post_delete.connect(
                self.changed_now_and_after_commit, sender=model, dispatch_uid=f"{uid}:deleted", weak=False
            )
        for through in m2m:
            m2m_changed.connect(
                self.changed_now_and_after_commit, sender=through, dispatch_uid=f"{self.key}:{through}", weak=False
            )
