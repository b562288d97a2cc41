"""Playwright driving Debian's Chromium (headless) against the product running
as a server process. Screenshots land in test-artifacts/."""

import os
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from tests.conftest import REPO, LiveServer

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# Playwright's sync API runs an event loop in this thread; the ORM calls the
# tests make to check the database are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        message = "no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)"
        if os.environ.get("CI") or os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


# --- The widget on an embedding site, and the product as a server (shared by the browser tests) ---


class EmbedSite:
    """Static pages served from a thread on `host`: the snippet on someone else's origin."""

    def __init__(self, host: str, bind: str) -> None:
        self.pages: dict[str, tuple[str, str]] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                content_type, body = pages.get(self.path, ("text/plain", "not found"))
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", content_type)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer((bind, 0), Handler)
        self.origin = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _patient_expect():
    # The server loads the intent model on the first message: give answers time.
    expect.set_options(timeout=30_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def allowed_site():
    site = EmbedSite("localhost", "127.0.0.1")
    yield site
    site.close()


@pytest.fixture
def start_server(transactional_db, active_model, allowed_site):
    """Start the product (several times on one port if a test restarts it)."""
    if not settings.EMBEDDED:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    servers: list[LiveServer] = []

    def start(port: int | None = None, **env: str) -> LiveServer:
        env = {"WIDGET_ORIGINS": allowed_site.origin, "ALLOWED_HOSTS": "127.0.0.1", **env}
        server = LiveServer(env_extra=env, port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server) -> LiveServer:
    """The product with its workers up: on a loaded two-core machine they take half a
    minute to start, longer than a test waits for an answer."""
    live = start_server()
    wait_for_workers(live)
    return live


@pytest.fixture(scope="session")
def reply_model_dir(tmp_path_factory):
    """A tiny retrieval reply model: three replies, one a long one (the dashboard must
    keep suggestions to one line each)."""
    from inference.replies import ReplyPair, ReplyTrainConfig, Turn, train_reply_model

    pairs = [
        ReplyPair(context=(Turn("customer", "where is my order"),), reply="Let me check the tracking for you."),
        ReplyPair(context=(Turn("customer", "i want a refund"),), reply="I can start a refund now."),
        ReplyPair(
            context=(Turn("customer", "do you ship abroad"),),
            reply="Yes, we ship to most countries in Europe and North America; delivery takes five to ten "
            "working days and the tracking link arrives by email as soon as the parcel leaves our warehouse.",
        ),
    ]
    return train_reply_model(pairs, tmp_path_factory.mktemp("replies") / "r", ReplyTrainConfig(kind="retrieval"))


# --- Driving the widget --------------------------------------------------------


class Widget:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.root = page.locator("chat-widget .root")
        self.panel = page.get_by_role("dialog")
        self.launcher = page.locator("chat-widget .launcher")
        self.input = page.locator("chat-widget textarea")
        self.banner = page.locator("chat-widget .conn")
        self.status_line = page.locator("chat-widget #cw-status")
        self.error = page.locator("chat-widget .err")

    def open(self) -> None:
        self.page.wait_for_function("window.ChatWidget && document.querySelector('chat-widget')")
        if not self.panel.is_visible():
            self.launcher.click()
        expect(self.panel).to_be_visible()

    def wait_online(self, timeout: float = 20_000) -> None:
        expect(self.root).to_have_attribute("data-connection", "online", timeout=timeout)

    def send(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")

    def bubbles(self, sender: str):
        return self.page.locator(f"chat-widget .log .msg.{sender} .bubble")

    def all_messages(self) -> list[str]:
        return self.page.locator("chat-widget .log .msg").evaluate_all(
            "els => els.map(e => e.dataset.seq + ':' + (e.querySelector('.bubble') || e).textContent)"
        )

    def shadow(self, script: str):
        return self.page.evaluate(
            f"(() => {{ const root = document.querySelector('chat-widget').shadowRoot; {script} }})()"
        )


def eventually(check, timeout: float = 20.0, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} did not hold within {timeout} s")
        time.sleep(0.1)


def log_in_agent(context, server: str):
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(server + "/agent/")
    assert "/agent/login/" in page.url
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-dot.live")  # online: the visitor will be told a person is coming
    return page


# --- The demo help center's knowledge index (widget, dashboard and explanation tests) ---------


@pytest.fixture(scope="session")
def demo_index_dir(tmp_path_factory):
    """The demo help center's index, its threshold chosen as a build in the product chooses it."""
    from inference.knowledge import (
        KnowledgeIndex,
        calibrate,
        load_articles,
        load_questions,
        split_questions,
    )
    from tests.knowledge.conftest import DEV_SET, HELP_CENTER

    index = KnowledgeIndex.build(load_articles(HELP_CENTER))
    validation, _ = split_questions(load_questions(DEV_SET))
    calibrate(index, validation)
    return index.save(tmp_path_factory.mktemp("kb") / "demo-index")


def serve_index(artifact_dir):
    """Make the index in `artifact_dir` the active (served) knowledge index version."""
    from chatbot.knowledge.models import KnowledgeIndexVersion

    return KnowledgeIndexVersion.objects.create(status="ready", is_active=True, artifact_dir=str(artifact_dir))


def wait_for_workers(server, timeout: float = 240.0) -> None:
    """Until the server's own inference and default workers say they are ready (their
    log lines; /healthz may count a previous server's workers still shutting down on a
    loaded machine). A task sent before its queue is declared on a fresh broker would be
    dropped: kombu's Redis transport routes only to declared queues."""
    deadline = time.monotonic() + timeout
    while True:
        log = server.log_path.read_text(errors="replace")
        if all(re.search(rf"\b{queue}@\S+ ready\.", log) for queue in ("inference", "default")):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the server's workers were not up within {timeout} s")
        time.sleep(0.5)
