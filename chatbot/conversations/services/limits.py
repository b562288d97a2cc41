"""Abuse limits on the public doors (issue 13): new sessions per client address and
for everyone together, and visitor websocket frames per visitor, per address and
(handoffs) per address whatever the session.

Counters live in the Django cache (Redis with REDIS_URL, so every server process
shares them), counted by django-ratelimit in fixed windows. The client address is
what the ASGI server reports: behind the reverse proxy, uvicorn's --proxy-headers
take it from X-Forwarded-For sent by FORWARDED_ALLOW_IPS (docs/security.md).
"""

import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit.core import get_usage

from chatbot.conversations.services.protocol import ProtocolError

UNKNOWN_ADDRESS = "unknown"


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


def _count(group: str, key: str, rate: str) -> dict | None:
    """One hit on the counter `group`/`key` (django-ratelimit's usage: count, limit,
    should_limit, time_left), or None when RATELIMIT_ENABLE is off."""
    # get_usage reads the request only through the key function and the method
    # filter (all methods here): websocket frames have no request to give it.
    return get_usage(None, group=group, key=lambda _group, _request: key, rate=rate, increment=True)


def _over(usage: dict | None) -> bool:
    return usage is not None and usage["should_limit"]


def _retry_after(usage: dict) -> int:
    return max(1, int(usage["time_left"]))


# --- POST /api/widget/sessions -------------------------------------------------------


def check_new_session(host: str | None) -> SessionRefusal | None:
    """None when a new session may start; else why not. An address over its own
    limit is not counted against everyone's, so one client cannot use it up."""
    address = client_address(host)
    usage = _count("widget-session:address", address, settings.SESSION_RATE_PER_IP)
    if _over(usage):
        return SessionRefusal("address", _retry_after(usage))
    usage = _count("widget-session:everyone", "all", settings.SESSION_RATE_GLOBAL)
    if _over(usage):
        return SessionRefusal("everyone", _retry_after(usage))
    return None


# --- Visitor websocket frames --------------------------------------------------------


def check_frame(kind: str, host: str | None, visitor_id: int | None = None) -> None:
    """Count one frame of `kind` (a user_message: check_message_from_address) from this
    address and visitor; raise RateLimited when it is over a limit."""
    address = client_address(host)
    usage = _count("ws-frame:address", address, settings.WS_RATE_PER_IP)
    if _over(usage):
        raise RateLimited("Too many frames from your network; wait a little and try again.", _retry_after(usage), kind)
    rate = settings.WS_FRAME_RATES.get(kind)
    if rate is not None and visitor_id is not None:
        usage = _count(f"ws-frame:{kind}", str(visitor_id), rate)
        if _over(usage):
            raise RateLimited(f"Too many {kind} frames; wait a little and try again.", _retry_after(usage), kind)
    if kind == "handoff_request":
        usage = _count("ws-handoff:address", address, settings.HANDOFF_RATE_PER_IP)
        if _over(usage):
            raise RateLimited(
                "Too many requests for a person from your network; an agent will see the ones already made.",
                _retry_after(usage),
                kind,
            )


def check_message_from_address(host: str | None) -> None:
    """Count one new visitor message (not a resend) from this address, in the
    address's frame budget and its message budget."""
    address = client_address(host)
    for group, rate in (
        ("ws-frame:address", settings.WS_RATE_PER_IP),
        ("ws-message:address", settings.WS_MESSAGE_RATE_PER_IP),
    ):
        usage = _count(group, address, rate)
        if _over(usage):
            raise RateLimited(
                "Too many messages from your network; wait a little and try again.", _retry_after(usage), "user_message"
            )
