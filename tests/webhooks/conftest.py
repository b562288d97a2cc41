"""A real HTTP receiver on 127.0.0.1 that answers from a script, and subscriptions pointing at it."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from chatbot.webhooks.models import EventType, Subscription


class Receiver:
    """Answers each POST with the next status of `script` (the last one repeats)."""

    def __init__(self) -> None:
        self.script: list = [200]
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    step = receiver.script[min(len(receiver.received), len(receiver.script) - 1)]
                    receiver.received.append({"headers": dict(self.headers), "body": body})
                if isinstance(step, tuple):  # ("sleep", seconds, status)
                    time.sleep(step[1])
                    step = step[2]
                self.send_response(step)
                self.end_headers()
                self.wfile.write(b"ok" if step < 300 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]

    def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.received)} of {count} requests after {timeout} s")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def local_delivery():
    """Deliveries to 127.0.0.1 over http, quickly retried: for tests only."""
    with override_settings(
        DEBUG=True,
        WEBHOOK_ALLOW_PRIVATE_URLS=True,
        WEBHOOK_RETRY_BASE_S=0.2,
        WEBHOOK_RETRY_MAX_DELAY_S=1.0,
        WEBHOOK_TIMEOUT_S=2.0,
    ):
        yield


@pytest.fixture
def subscription(db, receiver):
    return Subscription.objects.create(name="crm", url=receiver.url, events=[t.value for t in EventType])


def wait_until(predicate, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)
