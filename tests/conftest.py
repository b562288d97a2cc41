"""Shared fixtures: the actors, what a visitor says and the model predicted, the
websockets of the widget and the dashboard, a real (small) intent model, a Celery
worker, and the product running as a server process for end-to-end and browser tests.

Helpers are fixtures (request `say`, `receive_until`, ...): test modules never
import from one another."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache

# Ends the process without the interpreter's shutdown, where it could hang (see there).
pytest_plugins = ["tests.exit_plugin"]

REPO = Path(__file__).resolve().parent.parent
DEMO_INTENTS = REPO / "chatbot" / "nlu" / "demo" / "store_intents.yml"
TEST_CACHE = REPO / "var" / "test-cache"
ORIGIN = "http://127.0.0.1:8000"


def real_services() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and not settings.EMBEDDED


def require_real_services() -> None:
    """Skip where PostgreSQL and Redis are not configured; fail in CI, which must run these."""
    if real_services():
        return
    message = "needs DATABASE_URL (PostgreSQL) and REDIS_URL; .ci/run sets both"
    if os.environ.get("REQUIRE_REAL_SERVICES"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A channel layer instance per test. Each test runs on its own event loop, and a
    channels-redis layer keeps its receive lock and buffers per instance: a consumer
    still receiving when an earlier test's loop closed left that lock held for good,
    and the next test's consumers never got a frame."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


# --- The intent model --------------------------------------------------------


def _fingerprint(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """A real intent model trained (fast mode) on the demo store's intents,
    cached between runs until the data or the inference code changes."""
    import yaml

    from inference import Example, TrainConfig, train_intent_model

    target = TEST_CACHE / f"demo-model-{_fingerprint(DEMO_INTENTS, REPO / 'inference')}"
    if not target.exists():
        data = yaml.safe_load(DEMO_INTENTS.read_text())
        examples = [Example(text=t, intent=i["name"]) for i in data["intents"] for t in i["examples"]]
        TEST_CACHE.mkdir(parents=True, exist_ok=True)
        for stale in TEST_CACHE.glob("demo-model-*"):
            shutil.rmtree(stale, ignore_errors=True)
        train_intent_model(examples, target, config=TrainConfig(mode="fast", seed=13))
    return target


@pytest.fixture
def demo_intents(db):
    from chatbot.nlu import services

    services.import_intents_yaml(DEMO_INTENTS, source="demo")


@pytest.fixture
def active_model(db, demo_intents, demo_model_dir):
    from chatbot.nlu.models import ModelVersion

    return ModelVersion.objects.create(
        status=ModelVersion.Status.READY, artifact_dir=str(demo_model_dir), is_active=True, model_id="test"
    )


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker in a thread, on whatever broker the settings name."""
    from celery.contrib.testing.worker import start_worker

    from chatbot.celery import Queue, app

    if not settings.EMBEDDED:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, queues=[q.value for q in Queue]
    ) as worker:
        yield worker


# --- Actors ------------------------------------------------------------------


def _agents_group() -> Group:
    # Created by a migration; transactional tests flush it, so make sure it exists.
    group, _ = Group.objects.get_or_create(name="Agents")
    group.permissions.add(Permission.objects.get(codename="work_in_dashboard"))
    return group


def _user(username: str, *, agent: bool = False, staff: bool = False, superuser: bool = False):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username, password="pw-" + username, first_name=username.title(), is_staff=staff, is_superuser=superuser
    )
    if agent:
        user.groups.add(_agents_group())
    return user


@pytest.fixture
def agent(db):
    return _user("alice", agent=True)


@pytest.fixture
def other_agent(db):
    return _user("bob", agent=True)


@pytest.fixture
def admin(db):
    return _user("root", staff=True, superuser=True)


@pytest.fixture
def stranger(db):
    """Logged in, but neither agent nor staff."""
    return _user("charlie")


class VisitorSession:
    def __init__(self) -> None:
        from chatbot.conversations import services

        self.token, self.conversation = services.start_session(page_url="https://shop.example/")

    @property
    def conversation_id(self) -> str:
        return str(self.conversation.pk)


@pytest.fixture
def visitor(db) -> VisitorSession:
    return VisitorSession()


@pytest.fixture
def other_visitor(db) -> VisitorSession:
    return VisitorSession()


@pytest.fixture
def new_visitor(db):
    """`new_visitor()`: one more visitor with a session, for tests that need many."""
    return VisitorSession


# --- What a visitor says and what the model predicted -------------------------


@pytest.fixture
def say(db):
    """Store a visitor message as the widget would (`say(visitor, text)`)."""
    from chatbot.conversations import services

    def say(visitor: VisitorSession, text: str):
        message, created = services.record_visitor_message(visitor.conversation.pk, text, uuid.uuid4())
        assert created
        return message

    return say


@pytest.fixture
def predicted():
    """What the intent model said (`predicted(intent, confidence, out_of_scope=False)`)."""
    from chatbot.conversations.services import BotPrediction

    def predicted(intent: str, confidence: float, out_of_scope: bool = False) -> BotPrediction:
        return BotPrediction(intent=intent, confidence=confidence, out_of_scope=out_of_scope, model_version_id=None)

    return predicted


@pytest.fixture
def fresh(db):
    """The visitor's conversation as the database has it now (`fresh(visitor)`)."""
    from chatbot.conversations.models import Conversation

    return lambda visitor: Conversation.objects.get(pk=visitor.conversation.pk)


@pytest.fixture
def agent_online(agent):
    """A dashboard tab is open: handoffs say a person will reply (not "leave your email")."""
    from chatbot.agents import presence

    presence.connect(agent.pk, "test-agent-tab")
    return agent


# --- Websockets through the ASGI app ---------------------------------------------


@pytest.fixture
def login_cookie():
    """A real session cookie for a user, as the browser would send it (`login_cookie(user)`)."""
    from django.test import Client

    def login_cookie(user) -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return login_cookie


@pytest.fixture
def receive_until():
    """`await receive_until(socket, "message")`: the frames up to and including the first of that type."""

    async def receive_until(communicator, frame_type: str, within: float = 20) -> list[dict]:
        frames = []
        while True:
            frame = await communicator.receive_json_from(timeout=within)
            frames.append(frame)
            if frame["type"] == frame_type:
                return frames

    return receive_until


@pytest.fixture
def connect_chat():
    """`await connect_chat(origin=ORIGIN)`: the widget's socket, connected, not yet authenticated."""
    from channels.testing import WebsocketCommunicator

    from chatbot.asgi import application

    async def connect_chat(origin: str = ORIGIN):
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", origin.encode())])
        connected, _ = await communicator.connect()
        assert connected
        return communicator

    return connect_chat


@pytest.fixture
def authed(connect_chat):
    """`socket, history = await authed(visitor, last_seq=0)`: the widget's socket, authenticated."""

    async def authed(visitor: VisitorSession, last_seq: int = 0):
        communicator = await connect_chat()
        await communicator.send_json_to({"type": "auth", "token": visitor.token, "last_seq": last_seq})
        history = await communicator.receive_json_from(timeout=5)
        assert history["type"] == "history"
        return communicator, history

    return authed


@pytest.fixture
def send_message():
    """`ack = await send_message(socket, text, client_msg_id=None)`."""

    async def send_message(communicator, text: str, client_msg_id: str | None = None) -> dict:
        await communicator.send_json_to(
            {"type": "user_message", "text": text, "client_msg_id": client_msg_id or str(uuid.uuid4())}
        )
        return await communicator.receive_json_from(timeout=5)

    return send_message


@pytest.fixture
def agent_socket():
    """`agent_socket(cookie=None, origin=ORIGIN, host=...)`: the dashboard's socket, not yet
    connected; by default opened from the server's own page (Origin matches Host)."""
    from channels.testing import WebsocketCommunicator

    from chatbot.asgi import application

    def agent_socket(cookie: str | None = None, origin: str = ORIGIN, host: str = ORIGIN.split("://", 1)[1]):
        headers = [(b"origin", origin.encode()), (b"host", host.encode())]
        if cookie:
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        return WebsocketCommunicator(application, "/ws/agent/", headers=headers)

    return agent_socket


@pytest.fixture
def connected_agent(agent_socket, login_cookie):
    """`socket, hello = await connected_agent(user)`: a logged-in user's dashboard socket, connected."""
    from channels.db import database_sync_to_async

    async def connected_agent(user):
        communicator = agent_socket(await database_sync_to_async(login_cookie)(user))
        connected, _ = await communicator.connect()
        assert connected
        hello = await communicator.receive_json_from(timeout=5)
        assert hello["type"] == "hello"
        return communicator, hello

    return connected_agent


# --- The product as a process --------------------------------------------------


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process and its children, SIGKILL if they linger."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers, even if unhealthy
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def shared_database_url() -> str:
    """The URL of the database this test run uses, for server processes to share."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def server_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DEBUG="1",
        DATABASE_URL=shared_database_url(),
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        INFERENCE_THREADS="1",
        MODEL_DIR=str(REPO / "var" / "test-models"),
    )
    if not settings.EMBEDDED:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


class LiveServer:
    def __init__(self, env_extra: dict | None = None, args: list[str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = REPO / "var" / f"live-server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), *(args or [])],
            cwd=REPO,
            # Its own scheduler file: two servers' schedulers must not share one.
            env=server_env(CELERY_BEAT_SCHEDULE_FILENAME=str(REPO / "var" / f"beat-{self.port}"), **(env_extra or {})),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_http(self.url + "/healthz", process=self.process)

    def stop(self) -> None:
        stop_process_group(self.process)
        self.log.close()


@pytest.fixture
def live_server_url(transactional_db, active_model):
    """The product running as `manage.py serve` on the test database, with the demo model active."""
    if not settings.EMBEDDED:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    _agents_group()
    server = LiveServer()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def real_stack(active_model):
    """The ASGI server as a process without workers, on PostgreSQL and Redis (skipped without them)."""
    require_real_services()
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    server = LiveServer(args=["--no-workers"])
    yield server
    server.stop()


class WorkerProcess:
    """A Celery worker process on the inference and default queues."""

    def __init__(self, *args: str, **env: str) -> None:
        self.log_path = REPO / "var" / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chatbot", "worker", "-Q", "inference,default",
             "--pool", "solo", "--loglevel", "INFO", "--without-mingle", "--without-gossip", *args],
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
        stop_process_group(self.process)
        self.log.close()


@pytest.fixture
def start_worker_process():
    """`start_worker_process(*args, **env)`: a Celery worker process (args added to its
    command line, e.g. "--hostname", "a@%h"), stopped after the test."""
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        started.append(WorkerProcess(*args, **env))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API leaves an event loop behind
    that the async websocket tests after it would trip over."""
    items.sort(key=lambda item: "tests/browser/" in item.nodeid.replace("\\", "/"))
