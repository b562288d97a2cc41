"""Issue 14 in a real browser: the offline path from the visitor's first "a person,
please" to their rating, with the agent's inbox in between."""

import json
import time

import pytest
from playwright.sync_api import expect

from chatbot.conversations.models import BusinessHours, Conversation, Visitor
from tests.browser.conftest import Widget, eventually, log_in_agent, screenshot

pytestmark = [pytest.mark.browser]


def test_offline_request_email_quiet_bot_no_early_rating_then_an_agent_answers(
    live_server_url, browser, context, agent
):
    # Out of hours: the team works no hour of any day.
    BusinessHours.objects.create(enabled=True, open_days="0,1,2,3,4,5,6", opens_at="00:00", closes_at="00:00")
    visitor_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = visitor_context.new_page()
        page.set_default_timeout(20_000)
        sent: list[dict] = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(json.loads(payload))))
        widget = Widget(page)
        page.goto(live_server_url + "/")
        widget.open()
        widget.wait_online()
        # Before the visitor asks: the team is away, and how soon it usually replies.
        expect(page.locator("chat-widget .hours")).to_contain_text("We're away right now")
        expect(page.locator("chat-widget .hours")).to_contain_text("reply within")

        # Nobody is online: customer wording, never the internal reason.
        page.locator("chat-widget .chip.human").click()
        system = page.locator("chat-widget .log .msg.system")
        expect(system).to_have_count(1)
        expect(system.first).to_contain_text("You're in the queue")
        expect(system.first).to_contain_text("usually replies within")
        log_text = page.locator("chat-widget .log").inner_text()
        assert "Handed off" not in log_text and "asked for a person" not in log_text
        expect(widget.status_line).to_have_text("Waiting for a member of our team")
        expect(page.locator("chat-widget .chip.human")).to_have_count(0)
        expect(page.locator("chat-widget .log .thumb")).to_have_count(0)  # no thumbs on handoff lines

        # The small email field of an offline request.
        email = page.locator("chat-widget #cw-email")
        expect(email).to_be_visible()
        screenshot(page, "widget-waiting-offline")
        email.fill("ada@example.com")
        email.press("Enter")
        eventually(lambda: Visitor.objects.filter(email="ada@example.com").exists(), message="email stored")
        expect(system.last).to_contain_text("ada@example.com")
        expect(email).to_be_hidden()

        # The bot keeps quiet while the visitor waits; typing frames go out, throttled.
        bots_before = page.locator("chat-widget .log .msg.bot").count()
        widget.input.type("hello? anyone there?", delay=30)
        widget.input.press("Enter")
        expect(widget.bubbles("visitor")).to_have_count(1)
        time.sleep(3)
        expect(page.locator("chat-widget .log .msg.bot")).to_have_count(bots_before)
        typing_on = [f for f in sent if f.get("type") == "typing" and f.get("on")]
        assert 1 <= len(typing_on) <= 2, typing_on  # ~0.6 s of typing: one frame, not twenty
        assert any(f.get("type") == "typing" and not f.get("on") for f in sent)

        # Ending a chat nobody answered asks for nothing.
        page.get_by_role("button", name="End chat").click()
        expect(page.locator("chat-widget .card")).to_be_visible()
        expect(page.locator("chat-widget .stars")).to_be_hidden()
        screenshot(page, "widget-ended-unanswered")
        page.get_by_role("button", name="Back to the chat").click()
        expect(widget.input).to_be_visible()

        # The next morning: the agent finds it under the waiting conversations, with the email.
        agent_page = log_in_agent(context, live_server_url)
        agent_page.click(".inbox-views a[data-view='unassigned']")
        item = agent_page.locator(".inbox-results[data-inbox-view='unassigned'] .queue-item").first
        item.wait_for()
        assert "ada@example.com" in item.inner_text() and "Offline message" in item.inner_text()
        screenshot(agent_page, "inbox-offline-waiting")
        item.click()
        agent_page.wait_for_selector("#conversation")
        expect(agent_page.locator(".visitor-email")).to_have_text("ada@example.com")
        agent_page.click("text=Take over")
        agent_page.wait_for_selector("#conversation[data-mine='1']")
        expect(agent_page.locator("#conversation .tag-warn")).to_have_count(0)  # no stale "Offline message"

        # The agent sees the visitor typing.
        widget.input.type("are you th", delay=40)
        expect(agent_page.locator("#visitor-typing")).to_be_visible()
        widget.input.fill("")

        agent_page.fill("#composer-text", "Good morning, I'm Alice. How can I help?")
        agent_page.keyboard.press("Enter")
        expect(widget.bubbles("agent")).to_have_text(["Good morning, I'm Alice. How can I help?"])

        # Now someone answered: ending the chat asks for a rating.
        page.get_by_role("button", name="End chat").click()
        page.get_by_role("button", name="5 out of 5").click()
        expect(page.locator("chat-widget .card")).to_contain_text("Thanks for your rating!")
        eventually(lambda: Conversation.objects.get().csat == 5, message="rating stored")
        screenshot(page, "widget-rated-after-agent")
    finally:
        visitor_context.close()
