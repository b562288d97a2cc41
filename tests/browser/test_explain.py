"""The dashboard's "Why?" in a real browser against the real server: a visitor asks
in the real widget, the bot answers with the demo model, an agent toggles "Why?"
on the visitor's message and sees the words that drove the answer highlighted,
the rule as numbers and the nearest training examples with their edit links."""

import time

import pytest
from playwright.sync_api import expect

from chatbot.conversations.models import Message
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser]

QUESTION = "Where is my order <b>12345</b>? It has not arrived yet"


def wait_for(find, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while (found := find()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return found


def test_agent_sees_why_the_bot_understood_a_message(live_server_url, browser, context, agent):
    visitor_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        widget = visitor_context.new_page()
        widget.set_default_timeout(20_000)
        widget.goto(live_server_url + "/")
        widget.wait_for_function("window.ChatWidget && document.querySelector('chat-widget')")
        widget.locator("chat-widget .launcher").click()
        expect(widget.locator("chat-widget .root")).to_have_attribute("data-connection", "online")
        widget.locator("chat-widget textarea").fill(QUESTION)
        widget.locator("chat-widget textarea").press("Enter")
        # The bot's answer: the worker has loaded the model (slow on a busy machine) and answered.
        expect(widget.locator("chat-widget .log .msg.bot")).to_have_count(1, timeout=180_000)
        message = wait_for(lambda: Message.objects.filter(text=QUESTION, model_version__isnull=False).first())
    finally:
        visitor_context.close()

    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(live_server_url + "/agent/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-dot.live")
    page.goto(f"{live_server_url}/agent/c/{message.conversation_id}/")
    page.wait_for_selector("#connection-dot.live")

    box = page.locator(f'.msg[data-message-id="{message.pk}"]')
    box.locator(".why-toggle").click()
    panel = box.locator(".why")
    expect(panel).to_have_attribute("data-state", "ready", timeout=90_000)

    # The visitor's words, in place and as text (the <b> is shown, not obeyed).
    words = panel.locator(".why-text .why-word")
    assert words.count() == len(QUESTION.split())
    expect(panel.locator(".why-text")).to_have_text(QUESTION)
    assert panel.locator(".why-text b").count() == 0
    shades = [float(words.nth(i).evaluate("w => w.style.getPropertyValue('--shade')")) for i in range(words.count())]
    assert max(shades) == 1.0 and min(shades) < 1.0
    # The rule as numbers, the runners-up, and three nearest examples to edit.
    expect(panel.locator(".why-rule")).to_contain_text("threshold")
    expect(panel.locator(".why-rule")).to_contain_text(f"v{message.model_version_id}")
    assert panel.locator(".why-runners li").count() >= 1
    neighbours = panel.locator(".why-neighbours li")
    expect(neighbours).to_have_count(3)
    link = neighbours.first.locator("a.why-edit")
    assert "/admin/nlu/trainingexample/" in link.get_attribute("href")
    panel.scroll_into_view_if_needed()
    screenshot(page, "explain")

    # Toggled off and on again: answered from the page, no second request.
    box.locator(".why-toggle").click()
    expect(panel).to_be_hidden()
    box.locator(".why-toggle").click()
    expect(panel.locator(".why-neighbours li")).to_have_count(3)


KNOWLEDGE_QUESTION = "how do I clean the cutting board"  # no intent covers it; the product-care article does


def test_agent_sees_why_the_help_center_answered(start_server, demo_index_dir, browser, context, agent, settings):
    """The same "Why?" on a knowledge answer: the passages weighed with their BM25, dense
    and fused scores, the abstention score against the threshold, the chosen sentences
    and the index version."""
    from tests.browser.conftest import serve_index, wait_for_workers

    settings.KNOWLEDGE_AUTO_REBUILD = False
    version = serve_index(demo_index_dir)
    live = start_server(KNOWLEDGE_AUTO_REBUILD="0")
    wait_for_workers(live)
    visitor_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        widget = visitor_context.new_page()
        widget.set_default_timeout(20_000)
        widget.goto(live.url + "/")
        widget.wait_for_function("window.ChatWidget && document.querySelector('chat-widget')")
        widget.locator("chat-widget .launcher").click()
        expect(widget.locator("chat-widget .root")).to_have_attribute("data-connection", "online")
        widget.locator("chat-widget textarea").fill(KNOWLEDGE_QUESTION)
        widget.locator("chat-widget textarea").press("Enter")
        expect(widget.locator("chat-widget .log .msg.bot .kb-card")).to_have_count(1, timeout=180_000)
        message = wait_for(lambda: Message.objects.filter(text=KNOWLEDGE_QUESTION, bot_reply__isnull=False).first())
        assert message.bot_reply.knowledge_index_id == version.pk
        # The visitor's page has no "Why?" and no scores.
        assert widget.locator("chat-widget .why, chat-widget .why-toggle").count() == 0
    finally:
        visitor_context.close()

    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(live.url + "/agent/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-dot.live")
    page.goto(f"{live.url}/agent/c/{message.conversation_id}/")
    page.wait_for_selector("#connection-dot.live")

    box = page.locator(f'.msg[data-message-id="{message.pk}"]')
    box.locator(".why-toggle").click()
    panel = box.locator(".why")
    expect(panel).to_have_attribute("data-state", "ready", timeout=180_000)
    knowledge = panel.locator(".why-knowledge")
    expect(knowledge.locator(".why-kb-rule")).to_contain_text("answered from “Product manuals and care instructions”")
    expect(knowledge.locator(".why-kb-rule")).to_contain_text("against threshold")
    expect(knowledge.locator(".why-kb-rule")).to_contain_text(f"v{version.pk}")
    rows = knowledge.locator(".why-kb-passages tr:not(:first-child)")
    assert rows.count() >= 3
    expect(knowledge.locator(".why-kb-passages tr.chosen")).to_have_count(1)
    expect(knowledge.locator(".why-kb-passages tr.chosen")).to_contain_text("Product manuals and care instructions")
    for column in (2, 3, 4):  # BM25, dense, fused as numbers
        float(rows.first.locator("td").nth(column).text_content())
    expect(knowledge.locator(".why-kb-sentences li").first).to_contain_text("board")
    panel.scroll_into_view_if_needed()
    screenshot(page, "explain-knowledge")
