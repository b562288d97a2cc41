#!/usr/bin/env python3
"""Health check of the web container: GET /healthz on the local uvicorn.

Healthy (exit 0) only when /healthz answers 200; the app answers 503 when the
database, broker, channel layer or active model is not fine. Redirects are not
followed: any status but 200 is unhealthy.

The Host header is taken from ALLOWED_HOSTS so that Django's host validation
accepts the request whatever the deployment's host names are. The request is
plain HTTP over loopback; it says X-Forwarded-Proto: https (trusted by uvicorn
--proxy-headers from 127.0.0.1) so that an HTTPS redirect in the settings does
not turn the check into a 301.
"""

import http.client
import os
import sys

PORT = int(os.environ.get("HEALTHCHECK_PORT", "8000"))
TIMEOUT = float(os.environ.get("HEALTHCHECK_TIMEOUT", "10"))


def host_header() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        entry = entry.strip()
        if not entry or entry == "*":
            continue
        # ".example.com" allows example.com and its subdomains.
        return entry.lstrip(".")
    return "localhost"


def main() -> int:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    try:
        conn.request(
            "GET",
            "/healthz",
            headers={"Host": host_header(), "X-Forwarded-Proto": "https"},
        )
        response = conn.getresponse()
        body = response.read(2048).decode("utf-8", "replace")
    except OSError as exc:
        print(f"healthz: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if response.status != 200:
        print(f"healthz: HTTP {response.status} {body}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
