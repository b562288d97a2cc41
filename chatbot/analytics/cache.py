"""Rendered reports, kept until the outcomes they were read from change.

Final outcomes change only when the beat task or a signal writes them, and each
of those replaces the data generation (a random token, so a lost key can never
bring back a stale entry). Many supervisors opening the same range, or one
reloading it, then cost one render."""

import uuid

from django.core.cache import cache

GENERATION_KEY = "analytics:generation"
TTL_S = 600


def generation() -> str:
    return cache.get_or_set(GENERATION_KEY, lambda: uuid.uuid4().hex, timeout=None)


def outcomes_changed() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)


def cached(key: str, compute):
    """compute() once per data generation (and at most TTL_S seconds)."""
    full_key = f"analytics:{generation()}:{key}"
    value = cache.get(full_key)
    if value is None:
        value = compute()
        cache.set(full_key, value, timeout=TTL_S)
    return value
