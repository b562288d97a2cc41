"""Abuse limits on the public doors (issue 13): new sessions per client address and
for everyone together, and visitor websocket frames per visitor, per address and
(handoffs) per address whatever the session.

Counters live in the Django cache (Redis with REDIS_URL, so every server process
shares them), in fixed windows of each rate's period; all the counters of one frame
are counted in one round trip (a Redis pipeline of INCR and EXPIRE NX), where
django-ratelimit's get_usage asked the cache three times per counter: about eleven
round trips per visitor message, the most frequent thing the server does. The
client address is
what the ASGI server reports: behind the reverse proxy, uvicorn's --proxy-headers
take it from X-Forwarded-For sent by FORWARDED_ALLOW_IPS (docs/security.md).
"""

import ipaddress
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from chatbot.conversations.services.protocol import ProtocolError
from chatbot.environment import RATE_PATTERN

UNKNOWN_ADDRESS = "unknown"
PERIOD_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RateLimited(ProtocolError):
    """A frame over one of its limits; `retry_after` is in seconds."""

    def __init__(self, message: str, retry_after: int, frame: str) -> None:
        super().__init__("rate_limited", message, retry_after=retry_after, frame=frame)
        self.retry_after = retry_after
        self.frame = frame


@dataclass(frozen=True)
class SessionRefusal:
    """Why a new session was refused, and when to ask again (seconds)."""

    scope: str  # "address" or "everyone"
    retry_after: int


def client_address(host: str | None) -> str:
    """The address a limit counts: IPv4 as it is, IPv6 by its /64 (one customer's
    network hands out a whole /64, so single addresses are free to change)."""
    try:
        address = ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return UNKNOWN_ADDRESS
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


@dataclass(frozen=True)
class Usage:
    """A counter after its hit: `count` in the window, the `limit`, seconds left in the window."""

    count: int
    limit: int
    time_left: float

    @property
    def over(self) -> bool:
        return self.count > self.limit

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.time_left))


def split_rate(rate: str) -> tuple[int, int]:
    """(count, period in seconds) of a rate such as "10/m" or "5/30s" (chatbot.environment's format)."""
    match = re.fullmatch(RATE_PATTERN, rate)
    if match is None:
        raise ValueError(f"{rate!r} is not a rate such as 10/m or 5/30s")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * PERIOD_S[unit]


def count(*counters: tuple[str, str, str]) -> list[Usage]:
    """One hit on each counter (group, key, rate) in its fixed window, in one round trip."""
    now = time.time()
    windows = []
    for group, key, rate in counters:
        limit, period = split_rate(rate)
        start = int(now // period) * period
        windows.append((f"limit:{group}:{key}:{period}:{start}", limit, period, start + period - now))
    pipeline = getattr(cache, "pipeline", None)
    if pipeline is None:  # the embedded mode's in-memory cache, in one process
        hits = [_hit_local(name, period) for name, _, period, _ in windows]
    else:
        with pipeline() as pipe:
            for name, _, period, _ in windows:
                name = cache.make_and_validate_key(name)
                pipe.incr(name)
                pipe.expire(name, period + 1, nx=True)
            hits = pipe.execute()[0::2]
    return [Usage(hit, limit, left) for hit, (_, limit, _, left) in zip(hits, windows, strict=True)]


def _hit_local(name: str, period: int) -> int:
    cache.add(name, 0, timeout=period + 1)
    try:
        return cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.set(name, 1, timeout=period + 1)
        return 1


# --- POST /api/widget/sessions -------------------------------------------------------


def check_new_session(host: str | None) -> SessionRefusal | None:
    """None when a new session may start; else why not. An address over its own
    limit is not counted against everyone's, so one client cannot use it up."""
    address = client_address(host)
    (usage,) = count(("widget-session:address", address, settings.SESSION_RATE_PER_IP))
    if usage.over:
        return SessionRefusal("address", usage.retry_after)
    (usage,) = count(("widget-session:everyone", "all", settings.SESSION_RATE_GLOBAL))
    if usage.over:
        return SessionRefusal("everyone", usage.retry_after)
    return None


# --- Visitor websocket frames --------------------------------------------------------


def check_frame(kind: str, host: str | None, visitor_id: int | None = None) -> None:
    """Count one frame of `kind` (a user_message: message_counters) from this
    address and visitor; raise RateLimited when it is over a limit."""
    address = client_address(host)
    counters = [("ws-frame:address", address, settings.WS_RATE_PER_IP)]
    rate = settings.WS_FRAME_RATES.get(kind)
    if rate is not None and visitor_id is not None:
        counters.append((f"ws-frame:{kind}", str(visitor_id), rate))
    if kind == "handoff_request":
        counters.append(("ws-handoff:address", address, settings.HANDOFF_RATE_PER_IP))
    messages = {
        "ws-frame:address": "Too many frames from your network; wait a little and try again.",
        f"ws-frame:{kind}": f"Too many {kind} frames; wait a little and try again.",
        "ws-handoff:address": "Too many requests for a person from your network; an agent will see the ones "
        "already made.",
    }
    for (group, _, _), usage in zip(counters, count(*counters), strict=True):
        if usage.over:
            raise RateLimited(messages[group], usage.retry_after, kind)


def message_counters(host: str | None) -> list[tuple[str, str, str]]:
    """The counters one new visitor message (not a resend) from this address hits:
    the address's frame budget and its message budget."""
    address = client_address(host)
    return [
        ("ws-frame:address", address, settings.WS_RATE_PER_IP),
        ("ws-message:address", address, settings.WS_MESSAGE_RATE_PER_IP),
    ]


ADDRESS_MESSAGES_REFUSED = "Too many messages from your network; wait a little and try again."
