"""The help center beside the agent's reply box, in a real browser against the real
server: articles are suggested for the visitor's latest message (found by the
worker in the demo help center's index), the agent searches the help center, and
one click puts an article's title and link into the reply box."""

import pytest
from playwright.sync_api import expect

from chatbot.knowledge.services import DEMO_HELP_CENTER, import_articles, read_path
from tests.browser.conftest import log_in_agent, screenshot, serve_index, wait_for_workers
from tests.conftest import VisitorSession

pytestmark = [pytest.mark.browser]

QUESTION = "how do I clean the <b>cutting board</b>"


def test_agent_gets_article_suggestions_searches_and_inserts_a_link(
    context, start_server, demo_index_dir, settings, say, agent
):
    settings.KNOWLEDGE_AUTO_REBUILD = False  # the served index stays the one under test
    import_articles(read_path(DEMO_HELP_CENTER))  # what the search box looks through
    serve_index(demo_index_dir)
    live = start_server(KNOWLEDGE_AUTO_REBUILD="0")
    wait_for_workers(live)
    visitor = VisitorSession()
    say(visitor, QUESTION)

    page = log_in_agent(context, live.url)
    page.goto(f"{live.url}/agent/c/{visitor.conversation_id}/")
    page.wait_for_selector("#connection-dot.live")

    # Suggested for the visitor's message, by the worker, without the page waiting for it.
    suggestions = page.locator("#article-suggestions .article-item")
    expect(suggestions.first).to_be_visible(timeout=120_000)
    expect(suggestions.first.locator(".article-title")).to_have_text("Product manuals and care instructions")
    assert suggestions.count() == 3

    # The search box over the help center.
    page.fill("#article-q", "gift card")
    page.click("#article-search button[type=submit]")
    results = page.locator("#article-results .article-item")
    expect(results.first).to_be_visible()
    gift = results.filter(has_text="Northwind gift cards").first
    expect(gift).to_be_visible()
    screenshot(page, "dashboard-articles")

    # One click: the title and link go into the reply box, after what is already there.
    page.fill("#composer-text", "Here you go:")
    gift.locator(".article-insert").click()
    expect(page.locator("#composer-text")).to_have_value(
        "Here you go: Northwind gift cards — https://northwind.example/help/gift-cards"
    )
    suggestions.first.locator(".article-insert").click()
    expect(page.locator("#composer-text")).to_have_value(
        "Here you go: Northwind gift cards — https://northwind.example/help/gift-cards "
        "Product manuals and care instructions — https://northwind.example/help/product-care"
    )
