"""The SSRF guard: a webhook URL must resolve only to public addresses (unless
WEBHOOK_ALLOW_PRIVATE_URLS), and the request goes to the very address that was
checked, so a DNS answer that changes between check and send cannot redirect it."""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeUrl(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str  # the checked IP the request is sent to
    path: str  # path and query


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def check_url(url: str) -> Target:
    """Where `url` may be sent, or UnsafeUrl with the reason."""
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.DEBUG else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeUrl("The URL must start with https://" + (" or http://" if settings.DEBUG else "") + ".")
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry a user name or password.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("The URL's port is not a number from 1 to 65535.") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"{parts.hostname} does not resolve ({exc}).") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        refused = [str(a) for a in addresses if _refused(a)]
        if refused:
            raise UnsafeUrl(
                f"{parts.hostname} resolves to {', '.join(refused)}: loopback, private, link-local and other "
                "non-public addresses are refused (WEBHOOK_ALLOW_PRIVATE_URLS allows them)."
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, str(addresses[0]), path)
