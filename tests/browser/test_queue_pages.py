"""A flood of handoffs in a real browser: the agent's queue shows one page of the
waiting conversations with their total and "N more", pages through them, and keeps
its page when a new handoff refreshes the queue (issue 13)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from chatbot.conversations import services
from chatbot.conversations.models import Conversation
from tests.browser.conftest import log_in_agent, screenshot

pytestmark = [pytest.mark.browser]


def test_the_agent_pages_through_a_flood_of_waiting_conversations(start_server, context, agent):
    server = start_server(QUEUE_PAGE_SIZE="10")
    start = timezone.now() - timedelta(hours=1)
    waiting = []
    for n in range(25):
        _, conversation = services.start_session(page_url="https://shop.example/")
        Conversation.objects.filter(pk=conversation.pk).update(
            status=Conversation.Status.WAITING_FOR_AGENT, waiting_since=start + timedelta(seconds=n)
        )
        waiting.append(conversation)
    page = log_in_agent(context, server.url)
    expect(page.locator(".queue-waiting")).to_have_count(10)
    expect(page.locator("section", has_text="Waiting").locator(".count").first).to_have_text("25")
    page.click("text=15 more")
    expect(page.locator(f'.queue-waiting[data-conversation="{waiting[10].pk}"]')).to_have_count(1)
    expect(page.locator(".queue-waiting")).to_have_count(10)
    expect(page.locator("text=5 more")).to_have_count(1)
    screenshot(page, "dashboard-queue-page-2")

    # A new handoff refreshes the queue live; the agent stays on the page they chose.
    _, newest = services.start_session(page_url="https://shop.example/")
    services.hand_off(newest.pk, "requested")
    expect(page.locator("section", has_text="Waiting").locator(".count").first).to_have_text("26")
    expect(page.locator(f'.queue-waiting[data-conversation="{waiting[10].pk}"]')).to_have_count(1)
    expect(page.locator("text=6 more")).to_have_count(1)
    page.click("text=Back to the top")
    expect(page.locator(f'.queue-waiting[data-conversation="{waiting[0].pk}"]')).to_have_count(1)
