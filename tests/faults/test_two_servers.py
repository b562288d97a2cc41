"""Several hosts on one Redis and PostgreSQL (docs/deploy.md): two server
processes and two inference workers. A visitor on one server and an agent on
the other see each other live: the channel layer in Redis joins them."""

import json
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from django.conf import settings
from websockets.sync.client import connect

from tests.conftest import LiveServer, require_real_services

pytestmark = pytest.mark.django_db(transaction=True)


def receive_until(ws, predicate, within: float = 60) -> dict:
    """The first frame that `predicate` accepts; frames before it are skipped."""
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no such frame within {within} s")
        try:
            frame = json.loads(ws.recv(timeout=remaining))
        except TimeoutError:
            continue
        if predicate(frame):
            return frame


def agent_post(server: str, session_cookie: str, path: str, data: dict) -> tuple[int, dict]:
    """A dashboard action as the dashboard's script sends it: session and CSRF cookies, JSON back."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("Cookie", f"sessionid={session_cookie}")]
    opener.open(server + "/agent/", timeout=10)
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    request = urllib.request.Request(
        server + path,
        data=urllib.parse.urlencode(data).encode(),
        headers={
            "Cookie": f"sessionid={session_cookie}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Origin": server,
            "Referer": server + "/agent/",
            "Accept": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


@pytest.fixture
def two_hosts(active_model, agent, start_worker_process):
    require_real_services()
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    workers = [start_worker_process("--hostname", f"inference-{name}@%h") for name in ("a", "b")]
    servers = [LiveServer(args=["--no-workers"]) for _ in range(2)]
    try:
        for worker in workers:
            worker.wait_for_log(" ready.", timeout=120)
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.timeout(300)
def test_a_visitor_on_one_server_and_an_agent_on_the_other_see_each_other_live(two_hosts, agent, login_cookie):
    visitor_server, agent_server = two_hosts
    cookie = login_cookie(agent)
    session = urllib.request.Request(visitor_server.url + "/api/widget/sessions", data=b"{}", method="POST")
    token = json.load(urllib.request.urlopen(session, timeout=10))["token"]

    ws_url = agent_server.url.replace("http", "ws") + "/ws/agent/"
    with (
        connect(ws_url, origin=agent_server.url, additional_headers={"Cookie": f"sessionid={cookie}"}) as dashboard,
        connect(visitor_server.url.replace("http", "ws") + "/ws/chat/", origin=visitor_server.url) as widget,
    ):
        assert receive_until(dashboard, lambda f: f["type"] == "hello")["type"] == "hello"
        widget.send(json.dumps({"type": "auth", "token": token, "last_seq": 0}))
        receive_until(widget, lambda f: f["type"] == "history")

        # Visitor -> the agent on the other server (the queue changes live), and a bot reply from a worker.
        widget.send(json.dumps({"type": "user_message", "text": "where is my order?", "client_msg_id": _uuid()}))
        ack = receive_until(widget, lambda f: f["type"] == "ack")
        queued = receive_until(dashboard, lambda f: f["type"] == "queue")
        conversation_id = queued["conversation_id"]
        bot = receive_until(widget, lambda f: f["type"] == "message" and f["sender"] == "bot")
        assert bot["reply_to"] == ack["message_id"]

        # The agent, on the other server, opens the conversation, takes it over and replies.
        dashboard.send(json.dumps({"type": "open", "conversation_id": conversation_id}))
        receive_until(dashboard, lambda f: f["type"] == "opened")
        for action, data in (("take", {}), ("reply", {"text": "Hello, this is a person."})):
            status, body = agent_post(agent_server.url, cookie, f"/agent/c/{conversation_id}/{action}", data)
            assert status == 200 and body["ok"], body
        person = receive_until(widget, lambda f: f["type"] == "message" and f["sender"] == "agent")
        assert person["text"] == "Hello, this is a person."

        # ... and the visitor's answer reaches the agent's open conversation live.
        widget.send(json.dumps({"type": "user_message", "text": "thanks, it is order 42", "client_msg_id": _uuid()}))
        seen = receive_until(
            dashboard,
            lambda f: (
                f["type"] == "message" and f["message"]["sender"] == "visitor" and "order 42" in f["message"]["text"]
            ),
        )
        assert seen["conversation_id"] == conversation_id


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())
