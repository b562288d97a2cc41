"""The agent dashboard in a real browser against the real server: a visitor the
bot cannot help asks for a person; an agent sees them appear, takes over,
replies, and corrects the bot's intent.

The visitor is a small websocket client speaking docs/protocol.md (the widget
is not on main yet); the agent is Chromium.
"""

import json
import time
import urllib.request
import uuid

import pytest
from websockets.sync.client import connect

from chatbot.agents.models import CannedResponse
from chatbot.nlu.models import Feedback
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser]


class Visitor:
    """The widget's side of the protocol, enough for this story."""

    def __init__(self, server: str) -> None:
        request = urllib.request.Request(
            server + "/api/widget/sessions",
            data=json.dumps({"page_url": server + "/shoes/trail-runner"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        session = json.load(urllib.request.urlopen(request, timeout=10))
        self._connection = connect(
            server.replace("http://", "ws://") + "/ws/chat/", additional_headers={"Origin": server}, open_timeout=10
        )
        self.socket = self._connection.__enter__()
        self.send({"type": "auth", "token": session["token"], "last_seq": 0})
        assert self.receive_until(lambda f: f["type"] == "history")

    def send(self, frame: dict) -> None:
        self.socket.send(json.dumps(frame))

    def say(self, text: str) -> None:
        self.send({"type": "user_message", "text": text, "client_msg_id": str(uuid.uuid4())})

    def receive_until(self, matches, within: float = 30) -> dict:
        deadline = time.monotonic() + within
        while True:
            frame = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if matches(frame):
                return frame

    def close(self) -> None:
        self._connection.__exit__(None, None, None)


def test_agent_takes_over_a_stuck_visitor_and_corrects_the_bot(live_server_url, context, agent):
    # Earlier transactional tests may have flushed the starter canned responses.
    CannedResponse.objects.get_or_create(
        shortcut="order", defaults={"title": "Ask for the order number", "text": "Could you give me your order number?"}
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(live_server_url + "/agent/")
    assert "/agent/login/" in page.url
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-dot.live")  # online: the visitor will be told a person is coming

    visitor = Visitor(live_server_url)
    try:
        visitor.say("my parcel arrived crushed and the blender inside is in pieces")
        visitor.receive_until(lambda f: f["type"] == "message" and f["sender"] == "bot")
        visitor.send({"type": "handoff_request"})
        visitor.receive_until(lambda f: f["type"] == "status" and f["status"] == "waiting_for_agent")

        # It appears in the queue without a reload.
        item = page.locator(".queue-waiting").first
        item.wait_for()
        assert "blender" in item.inner_text()
        screenshot(page, "dashboard-queue")

        item.click()
        page.wait_for_selector("#conversation")
        assert page.locator(".msg-visitor .bubble").first.inner_text().startswith("my parcel arrived crushed")
        page.click("text=Take over")
        visitor.receive_until(lambda f: f["type"] == "status" and f["status"] == "with_agent")
        page.wait_for_selector("#conversation[data-mine='1']")

        page.fill("#composer-text", "Hi, I'm Alice. I'm sorry about the blender, let me sort out a replacement.")
        page.keyboard.press("Enter")
        reply = visitor.receive_until(lambda f: f["type"] == "message" and f["sender"] == "agent")
        assert reply["agent_name"] == "Alice" and reply["text"].startswith("Hi, I'm Alice.")

        # Canned response: "/" + shortcut, then Tab.
        page.fill("#composer-text", "")
        page.type("#composer-text", "/ord")
        page.wait_for_selector(".canned-option")
        page.keyboard.press("Tab")
        assert "order number" in page.input_value("#composer-text")

        # An internal note stays with the agents.
        page.click("button[data-kind=note]")
        page.wait_for_selector(".msg-note")

        # The visitor writes; the agent sees it live and corrects what the bot understood.
        visitor.say("The order number is NW-123456")
        live = page.locator(".msg-visitor", has_text="NW-123456")
        live.wait_for()
        message_id = int(live.get_attribute("data-message-id"))
        page.locator(".msg-visitor").first.locator("select").select_option("order_status")
        page.locator(".msg-visitor").first.locator(".corrected").wait_for()
        feedback = Feedback.objects.get(source="correction")
        assert feedback.suggested_intent == "order_status" and feedback.created_by == agent
        assert feedback.message_id != message_id  # the first message, not the live one
        page.locator(".msg-visitor .intent-pill", has_text="%").last.wait_for()  # the live one's prediction arrived
        screenshot(page, "dashboard-conversation")
        page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
        screenshot(page, "dashboard-tablet")

        # The note never reached the visitor: the next thing they get is the close.
        page.click("text=Close")
        frame = visitor.receive_until(lambda f: f["type"] in ("message", "status"))
        assert frame.get("sender") == "system" and "closed" in frame["text"]
    finally:
        visitor.close()
