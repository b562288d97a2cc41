"""The agent dashboard in a real browser against the real server: a visitor the
bot cannot help asks for a person in the real widget (one browser context); an
agent sees them appear, takes over, replies, and corrects the bot's intent
(another context)."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from playwright.sync_api import expect

from chatbot.agents.models import CannedResponse
from chatbot.conversations.models import Message
from chatbot.nlu.models import Feedback
from tests.browser.conftest import log_in_agent, screenshot

pytestmark = [pytest.mark.browser]


class WidgetVisitor:
    """A shopper on the demo page, using the embedded widget."""

    def __init__(self, page, server: str) -> None:
        self.page = page
        page.goto(server + "/")
        page.wait_for_function("window.ChatWidget && document.querySelector('chat-widget')")
        page.locator("chat-widget .launcher").click()
        expect(page.locator("chat-widget .root")).to_have_attribute("data-connection", "online")

    def say(self, text: str) -> None:
        self.page.locator("chat-widget textarea").fill(text)
        self.page.locator("chat-widget textarea").press("Enter")

    def bubbles(self, sender: str):
        return self.page.locator(f"chat-widget .log .msg.{sender} .bubble")


def wait_for(find, timeout: float = 30.0):
    """Poll `find` until it returns something (the server stores a message a moment
    after the browser sends it)."""
    deadline = time.monotonic() + timeout
    while (found := find()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def test_agent_sends_a_suggested_reply_in_one_click(start_server, browser, context, agent, reply_model_dir):
    from chatbot.replies.models import ReplyModelVersion, SuggestionEvent

    ReplyModelVersion.objects.create(
        kind="retrieval", status=ReplyModelVersion.Status.READY, artifact_dir=str(reply_model_dir), is_active=True
    )
    # This three-reply model's scores say nothing about relevance: every suggestion is shown.
    live_server_url = start_server(REPLY_RETRIEVAL_MIN_SCORE="-1").url
    page = log_in_agent(context, live_server_url)
    visitor_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        visitor = WidgetVisitor(visitor_context.new_page(), live_server_url)
        visitor.say("I would like to speak to a human please")
        expect(visitor.page.locator("chat-widget .log .msg.system")).to_have_count(1, timeout=30_000)
        page.locator(".queue-waiting").first.click()
        page.click("text=Take over")
        page.wait_for_selector("#conversation[data-mine='1']")
        expect(page.locator(".queue-mine")).to_have_count(1)

        visitor.say("Where is my order? It has been a week.")
        question = wait_for(lambda: Message.objects.filter(text__startswith="Where is my order").first())
        # Every set of this tiny model holds the same three replies: wait for the set
        # made for this message, not the one made for the first when it was taken over.
        box = page.locator("#reply-suggestions")
        expect(box).to_have_attribute("data-message-id", str(question.pk), timeout=30_000)
        suggestions = page.locator("#reply-suggestions .suggestion")
        expect(suggestions.first).to_have_text("Let me check the tracking for you.", timeout=30_000)
        assert suggestions.count() <= 3
        screenshot(page, "dashboard-suggestions")
        suggestions.first.click()
        assert page.input_value("#composer-text") == "Let me check the tracking for you."
        page.keyboard.press("Enter")
        expect(visitor.bubbles("agent")).to_have_text(["Let me check the tracking for you."])
        expect(page.locator("#reply-suggestions")).to_be_hidden()
        event = SuggestionEvent.objects.get(message__text__startswith="Where is my order")
        assert event.outcome == SuggestionEvent.Outcome.SENT_AS_IS
        assert event.agent == agent and event.reply.text == "Let me check the tracking for you."
        # The set shown for the first message (asking for a person) was passed over.
        assert set(SuggestionEvent.objects.exclude(pk=event.pk).values_list("outcome", flat=True)) <= {"ignored"}

        if not settings.EMBEDDED:  # this process reaches the server's channel layer only through Redis
            # A set for an earlier message that arrives late must not replace the newest one.
            from chatbot.realtime import AGENTS_GROUP
            from chatbot.replies.services import suggestions_event

            def send(group: str, event: dict) -> None:  # Playwright's loop owns this thread
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(asyncio.run, get_channel_layer().group_send(group, event)).result()

            send(AGENTS_GROUP, {**suggestions_event(event), "suggestions": [{"text": "Fresh"}]})
            expect(suggestions).to_have_text(["Fresh"])
            first = Message.objects.get(text__startswith="I would like to speak")
            send(AGENTS_GROUP, {**suggestions_event(event), "message_id": first.pk, "suggestions": [{"text": "Stale"}]})
            page.wait_for_timeout(1000)
            expect(suggestions).to_have_text(["Fresh"])
    finally:
        visitor_context.close()


def test_agent_takes_over_a_stuck_visitor_and_corrects_the_bot(live_server_url, browser, context, agent):
    # Earlier transactional tests may have flushed the starter canned responses.
    CannedResponse.objects.get_or_create(
        shortcut="order", defaults={"title": "Ask for the order number", "text": "Could you give me your order number?"}
    )
    page = log_in_agent(context, live_server_url)

    visitor_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        visitor = WidgetVisitor(visitor_context.new_page(), live_server_url)
        visitor.say("my parcel arrived crushed and the blender inside is in pieces")
        expect(visitor.bubbles("bot")).to_have_count(1, timeout=30_000)  # the server loads the model first
        visitor.page.locator("chat-widget .chip.human").click()
        expect(visitor.page.locator("chat-widget .log .msg.system")).to_have_count(1)

        # It appears in the queue without a reload.
        item = page.locator(".queue-waiting").first
        item.wait_for()
        assert "blender" in item.inner_text()
        screenshot(page, "dashboard-queue")

        item.click()
        page.wait_for_selector("#conversation")
        assert page.locator(".msg-visitor .bubble").first.inner_text().startswith("my parcel arrived crushed")
        page.click("text=Take over")
        page.wait_for_selector("#conversation[data-mine='1']")
        expect(page.locator(".queue-mine")).to_have_count(1)  # the queue follows without a reload
        expect(page.locator(".queue-waiting")).to_have_count(0)

        page.fill("#composer-text", "Hi, I'm Alice. I'm sorry about the blender, let me sort out a replacement.")
        page.keyboard.press("Enter")
        expect(visitor.bubbles("agent")).to_have_text(
            ["Hi, I'm Alice. I'm sorry about the blender, let me sort out a replacement."]
        )
        expect(visitor.page.locator("chat-widget .log .msg.agent .name")).to_have_text("Alice")

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
        page.locator(".msg-visitor").first.locator("select").select_option("order_status")
        page.locator(".msg-visitor").first.locator(".corrected").wait_for()
        feedback = Feedback.objects.get(source="correction")
        assert feedback.suggested_intent == "order_status" and feedback.created_by == agent
        assert feedback.message_id != int(live.get_attribute("data-message-id"))  # the first message
        expect(page.locator(".queue-mine .qi-text")).to_have_text("The order number is NW-123456")
        screenshot(page, "dashboard-conversation")
        screenshot(visitor.page, "dashboard-visitor-widget")
        page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
        screenshot(page, "dashboard-tablet")

        # The note never reached the visitor; closing does.
        page.click(".conv-actions button:text-is('Close')")  # not the inbox's "Closed" view
        expect(visitor.page.locator("chat-widget .log .msg.system")).to_have_count(3)  # handoff, joined, closed
        expect(visitor.bubbles("agent")).to_have_count(1)
        assert "Could you give me your order number" not in visitor.page.locator("chat-widget .log").inner_text()
    finally:
        visitor_context.close()
