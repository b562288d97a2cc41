"""One HTTP attempt: the signed JSON body POSTed to the checked address, within
the timeout, without following redirects."""

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings

from chatbot.webhooks.models import Event
from chatbot.webhooks.urlguard import UnsafeUrl, check_url

SIGNATURE_HEADER = "Webhook-Signature"


def body_of(event: Event) -> bytes:
    return json.dumps(
        {"id": str(event.id), "type": event.type, "created_at": event.created_at.isoformat(), "data": event.payload},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of "<timestamp>.<body>", hex, as `v1=<hex>` (docs/api.md shows how to check it)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


@dataclass
class Outcome:
    status_code: int | None  # None: no answer (timeout, refused connection, unsafe URL)
    error: str = ""
    retry_after_s: float | None = None
    retryable: bool = True

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(url: str, secret: str, event: Event) -> Outcome:
    try:
        target = check_url(url)
    except UnsafeUrl as exc:
        return Outcome(None, str(exc)[:500], retryable=False)
    body = body_of(event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "northwind-chatbot-webhooks/1",
        "Host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
        "Webhook-Id": str(event.id),
        "Webhook-Timestamp": str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    timeout = urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_S)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)
    try:
        response = pool.urlopen("POST", target.path, body=body, headers=headers, redirect=False, preload_content=False)
        try:
            snippet = response.read(500, decode_content=False)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        pool.close()
    status = response.status
    retry_after = response.headers.get("Retry-After")
    outcome = Outcome(status, "" if 200 <= status < 300 else snippet.decode("utf-8", "replace")[:500])
    if retry_after and retry_after.isdigit():
        outcome.retry_after_s = float(retry_after)
    # Timeouts, connection errors, 5xx and 429 are worth another try; a 4xx is the receiver saying no,
    # and a redirect is not followed (it would take the request somewhere unchecked).
    outcome.retryable = status >= 500 or status == 429
    return outcome
