"""The whole path on the real stack: the ASGI server and a Celery worker as
processes, PostgreSQL and Redis, and a websocket client speaking the protocol."""

import json
import time
import urllib.request
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from chatbot.conversations.models import Message

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def open_chat(server, last_seq: int = 0, token: str | None = None):
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


def test_demo_utterance_is_answered_over_the_real_stack(real_stack, start_worker_process):
    start_worker_process().wait_for_log("ready.")
    ws, _, _ = open_chat(real_stack)
    client_msg_id = str(uuid.uuid4())
    ws.send(json.dumps({"type": "user_message", "text": "how do I send an item back?", "client_msg_id": client_msg_id}))
    frames = frames_until_bot_message(ws, timeout=60)
    assert [f["type"] for f in frames] == ["ack", "typing", "message"]
    assert frames[0]["client_msg_id"] == client_msg_id
    assert frames[-1]["intent"] == "returns"
    ws.close()


def test_oversized_frame_is_refused_by_the_server(real_stack):
    ws, _, _ = open_chat(real_stack)
    ws.send(json.dumps({"type": "user_message", "text": "z" * 40_000, "client_msg_id": str(uuid.uuid4())}))
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1009
    assert not Message.objects.exists()


def test_reply_is_delivered_exactly_once_after_the_worker_is_killed_mid_task(real_stack, start_worker_process):
    from django.db import connection, transaction

    # A short visibility timeout, so the unacknowledged task comes back quickly.
    first = start_worker_process(CELERY_VISIBILITY_TIMEOUT="4")
    first.wait_for_log("ready.")
    ws, token, _ = open_chat(real_stack)
    with transaction.atomic(), connection.cursor() as cursor:
        # The worker reads the intents to choose its reply; the server
        # storing the visitor's message does not. Locking that table keeps
        # the worker inside the task, after its prediction, until it is killed.
        cursor.execute("LOCK TABLE nlu_intent IN ACCESS EXCLUSIVE MODE")
        ws.send(json.dumps({"type": "user_message", "text": "hello there", "client_msg_id": str(uuid.uuid4())}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        first.wait_for_log("reply_to_visitor_message[")
        time.sleep(1)  # let it predict and reach the lock
        first.kill()
    assert not Message.objects.filter(sender="bot").exists()

    start_worker_process(CELERY_VISIBILITY_TIMEOUT="4")
    frames = frames_until_bot_message(ws, timeout=90)
    assert [f["type"] for f in frames] == ["typing", "message"]
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
