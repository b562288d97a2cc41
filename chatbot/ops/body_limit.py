"""Request bodies are refused with 413 before they are read past a limit.

Django's ASGI handler reads the whole body into a temporary file before any
view or DATA_UPLOAD_MAX_MEMORY_SIZE check runs (a 1,000 MB POST to the
unauthenticated session endpoint filled about 1 GB of disk before its 400).
This wraps the HTTP application: a Content-Length over the limit is answered
at once, and a body without one is cut off as soon as it passes the limit.
"""

import json

from django.conf import settings


def limit_for(path: str) -> int:
    if path.startswith("/api/widget/"):
        return settings.WIDGET_API_MAX_BODY_BYTES
    return settings.REQUEST_MAX_BODY_BYTES


async def _refuse(send, limit: int) -> None:
    body = json.dumps(
        {"error": "too_large", "message": f"The request body is larger than the limit of {limit} bytes."}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _refuse(send, limit)

        received = 0
        over = False
        started = False

        async def limited_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True  # stop here: Django sees the client leave and reads no more
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if over and not started:
            await _refuse(send, limit)
