"""The whole path on the real stack: the ASGI server and a Celery worker as
processes, PostgreSQL and Redis, and a websocket client speaking the protocol."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from chatbot.conversations.models import Message
from tests.conftest import REPO, LiveServer, require_real_services, server_env

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def real_stack(active_model):
    require_real_services()
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    server = LiveServer(args=["--no-workers"])
    yield server
    server.stop()


class Worker:
    """A Celery worker process on the inference and default queues."""

    def __init__(self, **env: str) -> None:
        self.log_path = REPO / "var" / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chatbot", "worker", "-Q", "inference,default",
             "--pool", "solo", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
            cwd=REPO, env=server_env(**env), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.02)
        raise TimeoutError(f"{text!r} not in the worker's log after {timeout} s")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def open_chat(server: LiveServer, last_seq: int = 0, token: str | None = None):
    if token is None:
        request = urllib.request.Request(server.url + "/api/widget/sessions", data=b"{}", method="POST")
        token = json.load(urllib.request.urlopen(request))["token"]
    ws = connect(server.url.replace("http", "ws") + "/ws/chat/", origin=server.url, open_timeout=10)
    ws.send(json.dumps({"type": "auth", "token": token, "last_seq": last_seq}))
    history = json.loads(ws.recv(timeout=10))
    assert history["type"] == "history"
    return ws, token, history


def frames_until_bot_message(ws, timeout: float) -> list[dict]:
    frames = []
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        frames.append(frame)
        if frame["type"] == "message" and frame["sender"] == "bot":
            return frames


def test_demo_utterance_is_answered_over_the_real_stack(real_stack):
    worker = Worker()
    try:
        ws, _, _ = open_chat(real_stack)
        client_msg_id = str(uuid.uuid4())
        ws.send(
            json.dumps({"type": "user_message", "text": "how do I send an item back?", "client_msg_id": client_msg_id})
        )
        frames = frames_until_bot_message(ws, timeout=60)
        assert [f["type"] for f in frames] == ["ack", "typing", "message"]
        assert frames[0]["client_msg_id"] == client_msg_id
        assert frames[-1]["intent"] == "returns"
        ws.close()
    finally:
        worker.stop()


def test_oversized_frame_is_refused_by_the_server(real_stack):
    ws, _, _ = open_chat(real_stack)
    ws.send(json.dumps({"type": "user_message", "text": "z" * 40_000, "client_msg_id": str(uuid.uuid4())}))
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1009
    assert not Message.objects.exists()


def test_reply_is_delivered_exactly_once_after_the_worker_is_killed_mid_task(real_stack):
    # A short visibility timeout, so the unacknowledged task comes back quickly.
    worker = Worker(CELERY_VISIBILITY_TIMEOUT="4")
    worker.wait_for_log("ready.")
    ws, token, _ = open_chat(real_stack)
    ws.send(json.dumps({"type": "user_message", "text": "hello there", "client_msg_id": str(uuid.uuid4())}))
    # The first task loads the model; kill the worker while it holds the task.
    worker.wait_for_log("reply_to_visitor_message[")
    worker.kill()
    assert not Message.objects.filter(sender="bot").exists(), "the worker finished before it was killed"

    restarted = Worker(CELERY_VISIBILITY_TIMEOUT="4")
    try:
        frames = frames_until_bot_message(ws, timeout=90)
        assert [f["type"] for f in frames] == ["ack", "typing", "message"]
        assert frames[-1]["intent"] == "greeting"
        # Nothing more arrives: no second reply.
        with pytest.raises(TimeoutError):
            ws.recv(timeout=6)
        assert Message.objects.filter(sender="bot").count() == 1
        ws.close()
        # A reconnect replays the conversation once, in order.
        again, _, history = open_chat(real_stack, token=token)
        assert [(m["seq"], m["sender"]) for m in history["messages"]] == [(1, "visitor"), (2, "bot")]
        again.close()
    finally:
        restarted.stop()
